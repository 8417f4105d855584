/* cmd_plot.c — `eidetic plot`: draws a training run's metrics.jsonl with gnuplot: Birdie's objective
 * mixture over training (class shares at each controller decision), the controller's per-class
 * rewards, and the training loss with the run's evaluations (docs/birdie.md "Birdie in eidetic").
 *
 * It writes three files next to the image: BASE.dat (gnuplot data blocks, one per panel, each headed
 * by a comment naming its columns), BASE.gp (a script that redraws the image from anywhere: `gnuplot
 * BASE.gp`; it finds BASE.dat beside itself) and BASE.png and/or BASE.svg. Every file is written
 * under a temporary name first and renamed into place only when gnuplot succeeded, so a failure
 * leaves the previous outputs as they were. Without gnuplot the data and the script are still
 * written (exit status 3) with the command that draws them. */
#include <errno.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "cli/cli.h"
#include "core/common.h"
#include "io/files.h"
#include "io/opts.h"
#include "tools/metrics_read.h"
#include "tools/spawn.h"

enum { PANEL_MIXTURE = 1, PANEL_REWARDS = 2, PANEL_LOSS = 4, PANEL_ALL = 7 };
enum { EXIT_NO_GNUPLOT = 3 };

typedef struct {
    char run[1024], what[64], out[1024], format[8], style[16], title[256];
    int no_render;
} PlotOpts;

#define O(n, t, f, h) {n, t, offsetof(PlotOpts, f), sizeof(((PlotOpts *)0)->f), h}
static const OptDesc plot_opts[] = {
    O("run", OPT_STR, run, "the run directory (it holds metrics.jsonl); also accepted as the first argument"),
    O("what", OPT_STR, what, "mixture | rewards | loss | all, or a comma list (default all: every panel the run has data for)"),
    O("out", OPT_STR, out, "the image FILE (.png or .svg); default RUN/plots/WHAT.png. FILE.dat and FILE.gp go beside it"),
    O("format", OPT_STR, format, "png | svg | both (default: from --out's extension, else png)"),
    O("style", OPT_STR, style, "mixture panel: stacked (areas summing to 1, default) | lines (one step line per class)"),
    O("title", OPT_STR, title, "title of the figure (default: the run directory)"),
    O("no-render", OPT_FLAG, no_render, "write the data and the gnuplot script only (no gnuplot needed)"),
};
#undef O
static const int n_plot_opts = sizeof plot_opts / sizeof plot_opts[0];

static void plot_help(void) {
    printf("usage: eidetic plot [--run] RUN [--what mixture|rewards|loss|all] [--out FILE.png|FILE.svg] [--format png|svg|both]\n\n"
           "Draws a training run's metrics (RUN/metrics.jsonl) with gnuplot:\n"
           "  mixture   Birdie's objective mixture: the share of each objective class at every controller\n"
           "            decision vs the training step (runs trained with --objective birdie or birdie-causal)\n"
           "  rewards   the controller's reward per objective class (left axis) and their total (right axis)\n"
           "  loss      the training loss (and training accuracy) per step, with the run's evaluations:\n"
           "            test loss / accuracy, or validation loss for text runs\n"
           "  all       every panel the run has data for, stacked in one image (the default)\n\noptions:\n");
    opts_help(plot_opts, n_plot_opts, stdout);
    printf("\nWrites FILE.png and/or FILE.svg, FILE.dat (one data block per panel; mixture rows = the controller\n"
           "decisions: step, evaluation, mode, one share per class) and FILE.gp (`gnuplot FILE.gp` redraws the\n"
           "image from anywhere). Outputs are replaced only when everything succeeded.\n"
           "Exit status: 0 drawn; 1 error (nothing replaced); 3 gnuplot not found: FILE.dat and FILE.gp are\n"
           "written, draw them with `gnuplot FILE.gp` once gnuplot is installed (Debian: apt-get install gnuplot-nox).\n"
           "Example:\n"
           "  eidetic train --preset pb-tiny --objective birdie --steps 800 --out runs/pb-birdie\n"
           "  eidetic plot runs/pb-birdie --what mixture --out mixture.png\n");
}

/* ------------------------------------------------------------------ options ---- */

typedef struct {
    PlotOpts o;
    int panels, png, svg, stacked;
    char dir[1024], name[256]; /* the outputs: DIR/NAME.{dat,gp,png,svg} */
    char metrics[1100];
} Plot;

static int no_control(const char *s, const char *flag) {
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f) return eid_error("%s: control characters are not allowed", flag), -1;
    return 0;
}

static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

static int parse_what(const char *w, int *panels) {
    char buf[64];
    snprintf(buf, sizeof buf, "%s", w);
    *panels = 0;
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (!strcmp(t, "mixture")) *panels |= PANEL_MIXTURE;
        else if (!strcmp(t, "rewards")) *panels |= PANEL_REWARDS;
        else if (!strcmp(t, "loss")) *panels |= PANEL_LOSS;
        else if (!strcmp(t, "all")) *panels |= PANEL_ALL;
        else return eid_error("--what: unknown panel '%s' (expected mixture, rewards, loss or all, or a comma list)", t), -1;
    }
    if (!*panels) return eid_error("--what: empty (expected mixture, rewards, loss or all)"), -1;
    return 0;
}

static int plot_parse(Plot *p, int argc, char **argv) {
    memset(p, 0, sizeof *p);
    PlotOpts *o = &p->o;
    snprintf(o->what, sizeof o->what, "all");
    snprintf(o->style, sizeof o->style, "stacked");
    int first = 2;
    if (argc > 2 && strncmp(argv[2], "--", 2) != 0) { /* eidetic plot RUN [options] */
        if (strlen(argv[2]) >= sizeof o->run) return eid_error("plot: run directory path too long"), -1;
        snprintf(o->run, sizeof o->run, "%s", argv[2]);
        first = 3;
    }
    char given[sizeof o->run];
    snprintf(given, sizeof given, "%s", o->run);
    o->run[0] = 0;
    if (opts_parse(plot_opts, n_plot_opts, o, argc - first, argv + first, "plot") != 0) return -1;
    if (given[0] && o->run[0] && strcmp(given, o->run) != 0)
        return eid_error("plot: two run directories given ('%s' and --run %s)", given, o->run), -1;
    if (!o->run[0]) snprintf(o->run, sizeof o->run, "%s", given);
    if (!o->run[0]) return eid_error("plot: no run directory (eidetic plot --run DIR; see eidetic plot --help)"), -1;
    if (no_control(o->run, "--run") || no_control(o->out, "--out") || no_control(o->title, "--title")) return -1;
    if (parse_what(o->what, &p->panels) != 0) return -1;
    if (!strcmp(o->style, "stacked")) p->stacked = 1;
    else if (strcmp(o->style, "lines") != 0)
        return eid_error("--style: expected stacked or lines, got '%s'", o->style), -1;
    /* the image's format: --format, else --out's extension, else png */
    int ext_png = ends_with(o->out, ".png"), ext_svg = ends_with(o->out, ".svg");
    if (o->format[0]) {
        if (!strcmp(o->format, "png")) p->png = 1;
        else if (!strcmp(o->format, "svg")) p->svg = 1;
        else if (!strcmp(o->format, "both")) p->png = p->svg = 1;
        else return eid_error("--format: expected png, svg or both, got '%s'", o->format), -1;
        if ((ext_png && !p->png) || (ext_svg && !p->svg))
            return eid_error("--out %s: the extension contradicts --format %s", o->out, o->format), -1;
    } else if (ext_svg) {
        p->svg = 1;
    } else {
        p->png = 1;
    }
    /* the outputs' directory and base name */
    char base[1100];
    if (o->out[0]) {
        size_t n = strlen(o->out) - (ext_png || ext_svg ? 4 : 0);
        struct stat st;
        if (o->out[strlen(o->out) - 1] == '/' || (stat(o->out, &st) == 0 && S_ISDIR(st.st_mode)))
            return eid_error("--out %s: a directory; give the image's file name (e.g. %s/mixture.png)", o->out, o->out), -1;
        snprintf(base, sizeof base, "%.*s", (int)n, o->out);
        const char *dot = strrchr(base, '.'), *slash = strrchr(base, '/');
        if (!ext_png && !ext_svg && dot && (!slash || dot > slash) && !o->format[0])
            return eid_error("--out %s: the image must end in .png or .svg (or give --format)", o->out), -1;
    } else {
        char w[64];
        snprintf(w, sizeof w, "%s", o->what);
        for (char *c = w; *c; c++)
            if (*c == ',') *c = '-';
        snprintf(base, sizeof base, "%s/plots/%s", o->run, w);
    }
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s", base);
    snprintf(p->dir, sizeof p->dir, "%s", dirname(tmp));
    snprintf(tmp, sizeof tmp, "%s", base);
    const char *bn = basename(tmp);
    if (!bn[0] || !strcmp(bn, ".") || !strcmp(bn, "..") || !strcmp(bn, "/"))
        return eid_error("--out %s: not a file name", o->out), -1;
    snprintf(p->name, sizeof p->name, "%s", bn);
    snprintf(p->metrics, sizeof p->metrics, "%s/metrics.jsonl", o->run);
    return 0;
}

/* ------------------------------------------------------------------ data ---- */

/* a gnuplot single-quoted string: a quote is doubled */
static void gp_str(FILE *f, const char *s) {
    fputc('\'', f);
    for (; *s; s++) {
        if (*s == '\'') fputc('\'', f);
        fputc(*s, f);
    }
    fputc('\'', f);
}

/* a panel title: `head` (may be empty) on a first line above `text` */
static void gp_title(FILE *f, const char *head, const char *text) {
    fprintf(f, "  set title ");
    if (head[0]) gp_str(f, head), fprintf(f, ".\"\\n\".");
    gp_str(f, text);
    fprintf(f, "\n");
}

static void put_num(FILE *f, double v, const char *fmt) {
    if (isnan(v)) fputs(" nan", f);
    else fputc(' ', f), fprintf(f, fmt, v);
}

typedef struct {
    int idx_mix, idx_rew, idx_loss, idx_eval; /* block index in the .dat, -1 = not written */
    int n_eval;
    long last_step, ft_step;                  /* ft_step: first fine-tuning step, -1 = none */
} Blocks;

static int has_eval(const MetricsRow *r) {
    return !isnan(r->test_acc) || !isnan(r->test_loss) || !isnan(r->val_loss) || !isnan(r->val_bpb);
}

/* The mixture and rewards blocks share their layout: one row per controller decision, headed by a
 * comment naming the columns (step, eval, mode, then one value per class). */
static void put_ctl_header(FILE *f, const Metrics *m, const char *block, const char *per_class) {
    fprintf(f, "# %s: one row per controller decision; columns: step eval mode, %s:", block, per_class);
    for (int j = 0; j < m->n_classes; j++) fprintf(f, " [%s]", m->class_names[j]);
}

static void put_ctl_row_start(FILE *f, const MetricsCtl *r) {
    fprintf(f, "%ld %d %s", r->step, r->eval, r->mode[0] ? r->mode : "-");
}

static char *write_dat(const Plot *p, const Metrics *m, Blocks *b) {
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    int idx = 0, nc = m->n_classes;
    b->idx_mix = b->idx_rew = b->idx_loss = b->idx_eval = -1;
    b->ft_step = -1, b->n_eval = 0;
    b->last_step = m->rows[m->n - 1].step;
    fprintf(f, "# written by `eidetic plot` from %s (%d lines, steps %ld..%ld)\n", p->metrics, m->n, m->rows[0].step,
            b->last_step);
    if (p->panels & PANEL_MIXTURE) {
        put_ctl_header(f, m, "mixture", "then the share of each class");
        fprintf(f, "\n");
        for (int i = 0; i < m->n_ctl; i++) {
            const MetricsCtl *r = &m->ctl[i];
            put_ctl_row_start(f, r);
            for (int j = 0; j < nc; j++) put_num(f, r->mix[j], "%.5f");
            fprintf(f, "\n");
        }
        fprintf(f, "\n\n");
        b->idx_mix = idx++;
    }
    if (p->panels & PANEL_REWARDS) {
        put_ctl_header(f, m, "rewards", "the reward of each class");
        fprintf(f, ", then the total reward and the reward model's loss\n");
        for (int i = 0; i < m->n_ctl; i++) {
            const MetricsCtl *r = &m->ctl[i];
            put_ctl_row_start(f, r);
            for (int j = 0; j < nc; j++) put_num(f, r->reward[j], "%.5f");
            put_num(f, r->total_reward, "%.5f"), put_num(f, r->rm_loss, "%.6g");
            fprintf(f, "\n");
        }
        fprintf(f, "\n\n");
        b->idx_rew = idx++;
    }
    if (p->panels & PANEL_LOSS) {
        fprintf(f, "# loss: one row per training step; columns: step loss train_acc lr finetune\n");
        for (int i = 0; i < m->n; i++) {
            const MetricsRow *r = &m->rows[i];
            if (r->finetune && b->ft_step < 0) b->ft_step = r->step;
            fprintf(f, "%ld", r->step);
            put_num(f, r->loss, "%.6g"), put_num(f, r->train_acc, "%.6g"), put_num(f, r->lr, "%.6g");
            fprintf(f, " %d\n", r->finetune);
        }
        fprintf(f, "\n\n");
        b->idx_loss = idx++;
        fprintf(f, "# evaluations: one row per evaluated step; columns: step test_acc test_loss val_loss val_bpb\n");
        for (int i = 0; i < m->n; i++) {
            const MetricsRow *r = &m->rows[i];
            if (!has_eval(r)) continue;
            fprintf(f, "%ld", r->step);
            put_num(f, r->test_acc, "%.6g"), put_num(f, r->test_loss, "%.6g"), put_num(f, r->val_loss, "%.6g");
            put_num(f, r->val_bpb, "%.6g");
            fprintf(f, "\n");
            b->n_eval++;
        }
        if (!b->n_eval) fprintf(f, "# (none)\n");
        fprintf(f, "\n\n");
        b->idx_eval = idx++;
    }
    fclose(f);
    return text;
}

/* ------------------------------------------------------------------ script ---- */

static const char *const palette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                      "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

static char *write_gp(const Plot *p, const Metrics *m, const Blocks *b) {
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    int nc = m->n_classes, npanel = !!(p->panels & PANEL_MIXTURE) + !!(p->panels & PANEL_REWARDS) + !!(p->panels & PANEL_LOSS);
    int W = 1100, H = npanel == 1 ? 480 : 340 * npanel;
    fprintf(f, "# %s.gp — written by `eidetic plot`; redraws %s.%s from anywhere: gnuplot %s.gp\n"
               "# (the data is %s.dat beside this script; gnuplot -e \"formats='svg'\" %s.gp draws the SVG only)\n",
            p->name, p->name, p->png && p->svg ? "{png,svg}" : p->png ? "png" : "svg", p->name, p->name, p->name);
    /* this script's directory, from its own path */
    fprintf(f, "here = ''\ndo for [i = strlen(ARG0):1:-1] { if (here eq '' && ARG0[i:i] eq '/') { here = ARG0[1:i] } }\n");
    fprintf(f, "if (!exists('data')) data = here.");
    gp_str(f, p->name), fprintf(f, ".'.dat'\n");
    fprintf(f, "if (!exists('outbase')) outbase = here.");
    gp_str(f, p->name), fprintf(f, "\n");
    fprintf(f, "if (!exists('formats')) formats = '%s%s%s'\n", p->png ? "png" : "", p->png && p->svg ? " " : "", p->svg ? "svg" : "");
    if (nc) {
        fprintf(f, "array names[%d] = [", nc);
        for (int j = 0; j < nc; j++) {
            if (j) fprintf(f, ", ");
            char nm[MR_NAME_LEN + 16];
            if (m->have_names) snprintf(nm, sizeof nm, "%s", m->class_names[j]);
            else snprintf(nm, sizeof nm, "class %d", j + 1);
            gp_str(f, nm);
        }
        fprintf(f, "]\n");
    }
    fprintf(f, "array colors[%d] = [", (int)(sizeof palette / sizeof palette[0]));
    for (size_t j = 0; j < sizeof palette / sizeof palette[0]; j++) fprintf(f, "%s'%s'", j ? ", " : "", palette[j]);
    fprintf(f, "]\n");
    /* the plot areas line up across panels; the key sits right of them (after a right axis, if any) */
    int y2 = (p->panels & (PANEL_REWARDS | PANEL_LOSS)) != 0;
    fprintf(f, "set datafile missing 'nan'\nset grid lc rgb '#dddddd'\n"
               "set key at screen %.2f, graph 1 left top Left reverse font ',9' spacing 1.1\n"
               "set xrange [0:%ld]\nset lmargin at screen 0.09\nset rmargin at screen %.2f\n",
            y2 ? 0.80 : 0.78, b->last_step > 0 ? b->last_step : 1, y2 ? 0.71 : 0.76);
    fprintf(f, "do for [fmt in formats] {\n"
               "  if (fmt eq 'svg') { set terminal svg size %d,%d dynamic noenhanced font 'sans,11' background '#ffffff' } else {\n"
               "    if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) { set terminal pngcairo size %d,%d noenhanced font 'sans,10' }"
               " else { set terminal png size %d,%d noenhanced } }\n"
               "  set output outbase.'.'.fmt\n",
            W, H, W, H, W, H);
    char title[1100]; /* --run (< 1024) and the step range fit whole */
    /* one panel: its own title, or --title; several: --title (default: the run) above the panels' titles */
    if (p->o.title[0]) snprintf(title, sizeof title, "%s", p->o.title);
    else snprintf(title, sizeof title, "%s (steps %ld..%ld)", p->o.run, m->rows[0].step, b->last_step);
    int own = npanel == 1 && p->o.title[0]; /* the panel's title is --title */
    if (npanel > 1) {
        fprintf(f, "  set multiplot layout %d,1 title ", npanel);
        gp_str(f, title);
        fprintf(f, "\n");
    }
    const char *head = npanel == 1 && !own ? title : ""; /* one panel, no --title: the run above the panel's title */
    char ttl[600];
    if (p->panels & PANEL_MIXTURE) {
        snprintf(ttl, sizeof ttl, "Birdie objective mixture: class shares at each of %d controller decisions", m->n_ctl);
        gp_title(f, head, own ? title : ttl);
        fprintf(f, "  set xlabel 'training step'\n  set ylabel 'share of the training samples'\n  set yrange [0:1.06]\n"
                   "  set ytics 0,0.2,1\n  unset y2tics\n  unset y2label\n  unset arrow\n");
        if (p->stacked)
            fprintf(f, "  set style fill solid 0.9 noborder\n"
                       "  plot for [i=%d:1:-1] data index %d using 1:(sum [c=1:i] column(3+c)) with fillsteps"
                       " lc rgb colors[(i-1)%%%d+1] title names[i], \\\n",
                    nc, b->idx_mix, (int)(sizeof palette / sizeof palette[0]));
        else
            fprintf(f, "  plot for [i=1:%d] data index %d using 1:(column(3+i)) with steps lw 2"
                       " lc rgb colors[(i-1)%%%d+1] title names[i], \\\n",
                    nc, b->idx_mix, (int)(sizeof palette / sizeof palette[0]));
        fprintf(f, "    data index %d using 1:(strcol(3) eq 'explore' ? 1.03 : NaN) with points pt 7 ps 0.6 lc rgb 'black'"
                   " title 'exploration decision', \\\n"
                   "    data index %d using 1:(strcol(3) eq 'greedy' ? 1.03 : NaN) with points pt 6 ps 0.6 lc rgb '#555555'"
                   " title 'greedy decision'\n",
                b->idx_mix, b->idx_mix);
        fprintf(f, "  set style fill empty\n  set ytics autofreq\n  set yrange [*:*]\n");
    }
    if (p->panels & PANEL_REWARDS) {
        gp_title(f, head, own ? title : "controller reward per objective class (mean over its arms)");
        fprintf(f, "  set xlabel 'training step'\n  set ylabel 'class reward'\n  set y2label 'total reward'\n"
                   "  set ytics nomirror\n  set y2tics\n  unset arrow\n"
                   "  plot for [i=1:%d] data index %d using 1:(column(3+i)) with linespoints pt 7 ps 0.5 lw 1.5"
                   " lc rgb colors[(i-1)%%%d+1] title names[i], \\\n"
                   "    data index %d using 1:(column(%d)) axes x1y2 with lines lw 2.5 dt 2 lc rgb 'black' title 'total (right axis)'\n"
                   "  unset y2tics\n  unset y2label\n  set ytics mirror\n",
                nc, b->idx_rew, (int)(sizeof palette / sizeof palette[0]), b->idx_rew, 4 + nc);
    }
    if (p->panels & PANEL_LOSS) {
        gp_title(f, head, own ? title : b->n_eval ? "training loss and evaluations" : "training loss");
        fprintf(f, "  set xlabel 'training step'\n  set ylabel 'loss (nats per label)'\n  unset arrow\n");
        int acc = m->has[MR_F_TRAIN_ACC] || m->has[MR_F_TEST_ACC];
        if (acc) fprintf(f, "  set ytics nomirror\n  set y2tics\n  set y2range [0:1]\n  set y2label 'accuracy'\n");
        if (b->ft_step >= 0)
            fprintf(f, "  set arrow from %ld, graph 0 to %ld, graph 1 nohead dt 3 lc rgb '#444444'\n"
                       "  set label 1 'fine-tuning' at %ld, graph 0.95 offset 0.5,0 font ',9'\n",
                    b->ft_step, b->ft_step, b->ft_step);
        fprintf(f, "  plot data index %d using 1:2 with lines lw 1 lc rgb '#1f77b4' title 'training loss'", b->idx_loss);
        if (m->has[MR_F_TRAIN_ACC])
            fprintf(f, ", \\\n    data index %d using 1:3 axes x1y2 with lines lw 1 lc rgb '#aec7e8' title 'training accuracy (right)'",
                    b->idx_loss);
        if (m->has[MR_F_TEST_LOSS])
            fprintf(f, ", \\\n    data index %d using 1:3 with linespoints pt 7 ps 0.6 lw 2 lc rgb '#d62728' title 'test loss'",
                    b->idx_eval);
        if (m->has[MR_F_VAL_LOSS])
            fprintf(f, ", \\\n    data index %d using 1:4 with linespoints pt 7 ps 0.6 lw 2 lc rgb '#d62728' title 'validation loss'",
                    b->idx_eval);
        if (m->has[MR_F_TEST_ACC])
            fprintf(f, ", \\\n    data index %d using 1:2 axes x1y2 with linespoints pt 5 ps 0.6 lw 2 lc rgb '#2ca02c' title 'test accuracy (right)'",
                    b->idx_eval);
        fprintf(f, "\n  unset label 1\n  unset arrow\n");
        if (acc) fprintf(f, "  unset y2tics\n  unset y2label\n  set ytics mirror\n");
    }
    if (npanel > 1) fprintf(f, "  unset multiplot\n");
    fprintf(f, "  unset output\n}\n");
    fclose(f);
    return text;
}

/* ------------------------------------------------------------------ run ---- */

static int run_dir_check(const char *run) {
    struct stat st;
    if (stat(run, &st) != 0) return eid_error("--run %s: %s", run, strerror(errno)), -1;
    if (!S_ISDIR(st.st_mode)) return eid_error("--run %s: not a directory", run), -1;
    char path[1100];
    snprintf(path, sizeof path, "%s/metrics.jsonl", run);
    if (!eid_file_exists(path))
        return eid_error("%s: not found: is %s a training run's directory (eidetic train --out)?", path, run), -1;
    return 0;
}

/* the last non-empty line of a (small) log file, for an error message */
static void last_line(const char *path, char *out, size_t n) {
    out[0] = 0;
    FILE *f = fopen(path, "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        size_t l = strlen(line);
        while (l && (line[l - 1] == '\n' || line[l - 1] == '\r')) line[--l] = 0;
        if (l) snprintf(out, n, "%s", line);
    }
    fclose(f);
}

static int rename_into(const char *from, const char *to) {
    if (rename(from, to) != 0) return eid_error("%s: cannot rename to %s (%s)", from, to, strerror(errno)), -1;
    return 0;
}

static int plot_main(Plot *p) {
    const PlotOpts *o = &p->o;
    if (run_dir_check(o->run) != 0) return -1;
    Metrics m;
    if (metrics_read(p->metrics, &m) != 0) return -1;
    if (m.torn_tail) fprintf(stderr, "plot: note: %s ends in an unfinished line (a run still writing?): skipped\n", p->metrics);
    int explicit_all = p->panels == PANEL_ALL, rc = -1; /* all: the panels the run has data for */
    /* what the run has */
    if (!m.n_ctl) {
        if (explicit_all && (p->panels & PANEL_LOSS)) {
            p->panels &= ~(PANEL_MIXTURE | PANEL_REWARDS);
            fprintf(stderr, "plot: note: %s has no controller lines (not a --objective birdie run): drawing the loss only\n",
                    p->metrics);
        } else if (p->panels & (PANEL_MIXTURE | PANEL_REWARDS)) {
            eid_error("%s: no controller lines: was the run trained with --objective birdie|birdie-causal?", p->metrics);
            goto out;
        }
    }
    if ((p->panels & PANEL_REWARDS) && !m.has[MR_F_REWARD]) {
        if (explicit_all) p->panels &= ~PANEL_REWARDS;
        else {
            eid_error("%s: the controller lines carry no \"birdie_class_reward\"", p->metrics);
            goto out;
        }
    }
    if ((p->panels & PANEL_LOSS) && !m.has[MR_F_LOSS]) {
        if (explicit_all && (p->panels & ~PANEL_LOSS)) p->panels &= ~PANEL_LOSS;
        else {
            eid_error("%s: no line carries \"loss\"", p->metrics);
            goto out;
        }
    }
    if (m.n_ctl && !m.have_names && (p->panels & (PANEL_MIXTURE | PANEL_REWARDS)))
        fprintf(stderr, "plot: note: %s does not name its classes (\"birdie_classes\", written since `eidetic plot` exists): "
                        "the legend says class 1..%d, in the order of docs/birdie.md \"Birdie in eidetic\"\n",
                p->metrics, m.n_classes);
    if (eid_mkdir_p(p->dir) != 0) goto out;
    Blocks b;
    char *dat = write_dat(p, &m, &b), *gp = write_gp(p, &m, &b);
    char fin[4][1400], tmp[4][1400], log[1400];
    static const char *const ext[4] = {"dat", "gp", "png", "svg"};
    int pid = (int)getpid();
    for (int k = 0; k < 4; k++) {
        snprintf(fin[k], sizeof fin[k], "%s/%s.%s", p->dir, p->name, ext[k]);
        snprintf(tmp[k], sizeof tmp[k], "%s/.%s.plot-%d.%s", p->dir, p->name, pid, ext[k]);
    }
    snprintf(log, sizeof log, "%s/.%s.plot-%d.log", p->dir, p->name, pid);
    int want[4] = {1, 1, p->png, p->svg};
    if (o->no_render) {
        rc = eid_write_text_atomic(fin[0], dat) == 0 && eid_write_text_atomic(fin[1], gp) == 0 ? 0 : -1;
        if (rc == 0) printf("wrote %s and %s; draw with: gnuplot %s\n", fin[0], fin[1], fin[1]);
        goto done;
    }
    if (eid_write_text_atomic(tmp[0], dat) != 0 || eid_write_text_atomic(tmp[1], gp) != 0) goto cleanup;
    char e_data[1600], e_out[1600], e_fmt[64];
    {
        FILE *f = fmemopen(e_data, sizeof e_data, "w");
        fputs("data = ", f), gp_str(f, tmp[0]);
        fclose(f);
        char tb[1400];
        snprintf(tb, sizeof tb, "%s/.%s.plot-%d", p->dir, p->name, pid);
        f = fmemopen(e_out, sizeof e_out, "w");
        fputs("outbase = ", f), gp_str(f, tb);
        fclose(f);
        snprintf(e_fmt, sizeof e_fmt, "formats = '%s%s%s'", p->png ? "png" : "", p->png && p->svg ? " " : "", p->svg ? "svg" : "");
    }
    char *av[] = {"gnuplot", "-e", e_data, "-e", e_out, "-e", e_fmt, tmp[1], NULL};
    SpawnOpts so = {.in = "/dev/null", .out = log, .err = log, .search_path = 1, .die_with_parent = 1};
    pid_t child = spawn_start(av, &so);
    int st = child < 0 ? -1 : spawn_wait(child, NULL);
    if (st < 0) goto cleanup;
    if (WIFEXITED(st) && WEXITSTATUS(st) == 127) {
        /* no gnuplot: the data and the script are complete, keep them */
        if (rename_into(tmp[0], fin[0]) != 0 || rename_into(tmp[1], fin[1]) != 0) goto cleanup;
        eid_fsync_dir(p->dir);
        unlink(log);
        eid_error("gnuplot not found (Debian: apt-get install gnuplot-nox): wrote %s and %s; draw the image with: gnuplot %s",
                  fin[0], fin[1], fin[1]);
        rc = EXIT_NO_GNUPLOT;
        goto done;
    }
    int drawn = WIFEXITED(st) && WEXITSTATUS(st) == 0;
    for (int k = 2; k < 4 && drawn; k++) {
        struct stat sb;
        if (want[k] && (stat(tmp[k], &sb) != 0 || sb.st_size == 0)) drawn = 0;
    }
    if (!drawn) {
        char why[512], keep[1400];
        last_line(log, why, sizeof why);
        snprintf(keep, sizeof keep, "%s/%s.gnuplot.log", p->dir, p->name);
        rename(log, keep);
        eid_error("gnuplot failed (%s %d)%s%s; its output is in %s; nothing was replaced",
                  WIFEXITED(st) ? "exit status" : "signal", WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st), why[0] ? ": " : "",
                  why, keep);
        goto cleanup;
    }
    for (int k = 0; k < 4; k++)
        if (want[k] && rename_into(tmp[k], fin[k]) != 0) goto cleanup;
    eid_fsync_dir(p->dir);
    unlink(log);
    rc = 0;
    if (p->panels & PANEL_MIXTURE)
        printf("mixture: %d controller decisions over %d classes, steps %ld..%ld\n", m.n_ctl, m.n_classes,
               m.rows[0].step, m.rows[m.n - 1].step);
    for (int k = 2; k < 4; k++)
        if (want[k]) printf("wrote %s\n", fin[k]);
    printf("data %s, script %s (gnuplot %s redraws it)\n", fin[0], fin[1], fin[1]);
    goto done;
cleanup:
    for (int k = 0; k < 4; k++) unlink(tmp[k]);
    unlink(log);
done:
    free(dat), free(gp);
out:
    metrics_free(&m);
    return rc;
}

int cmd_plot(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) return plot_help(), 0;
    Plot p;
    if (plot_parse(&p, argc, argv) != 0) return cli_fail("plot");
    int rc = plot_main(&p);
    if (rc == EXIT_NO_GNUPLOT) return cli_fail("plot"), EXIT_NO_GNUPLOT;
    return rc == 0 ? 0 : cli_fail("plot");
}
