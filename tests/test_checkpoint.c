/* test_checkpoint.c — checkpoints: bit-exact round trip, rejected corruptions with clear errors,
 * config.json validation, and a resumed run that continues exactly like an uninterrupted one. */
#include <sys/stat.h>
#include <unistd.h>
#include "core/runtime.h"
#include "io/checkpoint.h"
#include "io/files.h"
#include "io/safetensors.h"
#include "model_util.h"
#include "train/rundir.h"
#include "train/train_state.h"
#include "train/trainer.h"

static char tmpdir[256];

static void path(char *buf, const char *a, const char *b) { snprintf(buf, 512, "%s/%s%s%s", tmpdir, a, b ? "/" : "", b ? b : ""); }

static void round_trip(const char *layers, int d_ff, int tied) {
    char dir[512];
    path(dir, "rt", NULL);
    Model *m = tiny_model(layers, 23, 8, d_ff, tied, 0, 4);
    CHECK(ckpt_save_model(m, dir, 17) == 0, "save: %s", eid_last_error());
    long step = 0;
    Model *r = ckpt_load_model(dir, &step);
    CHECK(r != NULL, "load: %s", eid_last_error());
    if (!r) return model_free(m);
    CHECK(step == 17, "step metadata %ld", step);
    int same = r->n_reals == m->n_reals;
    for (int j = 0; same && j < m->nparam; j++)
        same = !memcmp(r->w + m->param[j].offset, m->w + m->param[j].offset, sizeof(real) * m->param[j].numel);
    CHECK(same, "[%s] weights differ after round trip", layers);
    CHECK(r->nparam == m->nparam, "parameter tables differ");
    int tok[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    real *a = eid_xmalloc(sizeof(real) * 9 * 23), *b = eid_xmalloc(sizeof(real) * 9 * 23);
    model_plan(m, 1, 9, 9), model_plan(r, 1, 9, 9);
    model_trunk_forward(m, tok, NULL, 1, 9), model_logits_all(m, a);
    model_trunk_forward(r, tok, NULL, 1, 9), model_logits_all(r, b);
    CHECK(!memcmp(a, b, sizeof(real) * 9 * 23), "[%s] logits differ after round trip", layers);
    free(a), free(b);
    model_free(m), model_free(r);
}

/* GLA's g_norm_eps (the fla-hub mapping sets it, docs/lm.md "Published checkpoints"): written to
 * config.json, read back, and it changes the logits (0 = the old fixed 1e-5, bit for bit). */
static void gla_g_norm_eps(void) {
    char dir[512];
    path(dir, "geps", NULL);
    int tok[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    real *lg[3];
    double eps[3] = {0, 1e-5, 0.3};
    for (int k = 0; k < 3; k++) {
        ModelCfg c;
        memset(&c, 0, sizeof c);
        c.vocab_size = 23, c.d_model = 8, c.tie_embeddings = 1, c.norm_eps = 1e-5;
        modelcfg_set_layers(&c, "gla,gla", 0);
        for (int i = 0; i < 2; i++) c.layer[i].g_norm_eps = eps[k], c.layer[i].num_heads = 2;
        Model *m = model_new(&c);
        model_init_params(m, 5);
        CHECK(ckpt_save_model(m, dir, 1) == 0, "save: %s", eid_last_error());
        Model *r = ckpt_load_model(dir, NULL);
        CHECK(r && r->cfg.layer[1].g_norm_eps == eps[k], "g_norm_eps %g not kept by config.json", eps[k]);
        lg[k] = eid_xmalloc(sizeof(real) * 9 * 23);
        if (r) {
            model_plan(r, 1, 9, 9);
            model_trunk_forward(r, tok, NULL, 1, 9), model_logits_all(r, lg[k]);
        }
        model_free(m), model_free(r);
    }
    CHECK(!memcmp(lg[0], lg[1], sizeof(real) * 9 * 23), "g_norm_eps 0 is not the default 1e-5");
    CHECK(t_rel_err(lg[2], lg[1], 9 * 23, 1e-6) > 1e-3, "g_norm_eps 0.3 does not change the logits");
    for (int k = 0; k < 3; k++) free(lg[k]);
}

static void write_bytes(const char *p, const void *d, size_t n) {
    FILE *f = fopen(p, "wb");
    fwrite(d, 1, n, f);
    fclose(f);
}

static char *read_bytes(const char *p, size_t *n) {
    FILE *f = fopen(p, "rb");
    fseek(f, 0, SEEK_END);
    *n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = eid_xmalloc(*n + 1);
    *n = fread(b, 1, *n, f);
    b[*n] = 0;
    fclose(f);
    return b;
}

static void expect_load_error(const char *dir, const char *needle, const char *what) {
    eid_clear_error();
    Model *m = ckpt_load_model(dir, NULL);
    CHECK(m == NULL, "%s: a damaged checkpoint was accepted", what);
    CHECK(strstr(eid_last_error(), needle) != NULL, "%s: error '%s' does not mention '%s'", what, eid_last_error(), needle);
    model_free(m);
}

static void corruptions(void) {
    char dir[512], st[512], cfg[512];
    path(dir, "bad", NULL), path(st, "bad", "model.safetensors"), path(cfg, "bad", "config.json");
    Model *m = tiny_model("longhorn,longhorn", 23, 8, 0, 1, 0, 4);
    ckpt_save_model(m, dir, 1);
    size_t n, nc;
    char *good = read_bytes(st, &n), *gcfg = read_bytes(cfg, &nc);
    write_bytes(st, good, n / 2);
    expect_load_error(dir, "truncated", "truncated safetensors");
    write_bytes(st, good, 5);
    expect_load_error(dir, "too short", "5-byte safetensors");
    char *bad = eid_xmalloc(n);
    memcpy(bad, good, n);
    bad[8] = '[';
    write_bytes(st, bad, n);
    expect_load_error(dir, "JSON", "corrupted header");
    memcpy(bad, good, n);
    bad[0] = (char)0xff, bad[3] = 0x7f;
    write_bytes(st, bad, n);
    expect_load_error(dir, "header length", "absurd header length");
    /* a NaN weight */
    memcpy(bad, good, n);
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = (hl << 8) | (uint8_t)good[i];
    real nanv = NAN;
    memcpy(bad + 8 + hl + 16, &nanv, sizeof nanv);
    write_bytes(st, bad, n);
    expect_load_error(dir, "non-finite", "NaN weight");
    write_bytes(st, good, n);
    /* config that does not match the tensors */
    char *c2 = eid_xmalloc(nc + 16);
    snprintf(c2, nc + 16, "%s", gcfg);
    char *p = strstr(c2, "\"d_model\":\t8");
    if (p) p[11] = '9';
    write_bytes(cfg, c2, strlen(c2));
    expect_load_error(dir, "shape", "config/tensor shape mismatch");
    write_bytes(cfg, "{\"vocab_size\": 23}", 18);
    expect_load_error(dir, "d_model", "config without d_model");
    write_bytes(cfg, "{\"vocab_size\":23,\"d_model\":8,\"layers\":[{\"mixer\":\"lstm\"}]}", 57);
    expect_load_error(dir, "unknown mixer", "unknown mixer");
    write_bytes(cfg, "not json", 8);
    expect_load_error(dir, "JSON", "config not JSON");
    write_bytes(cfg, gcfg, nc);
    unlink(st);
    expect_load_error(dir, "cannot open", "missing model.safetensors");
    path(dir, "does-not-exist", NULL);
    expect_load_error(dir, "no such checkpoint", "missing directory");
    free(good), free(gcfg), free(bad), free(c2);
    model_free(m);
}

static void tiny_cfg(TrainCfg *c, const char *out, int steps) {
    preset_apply(c, "tiny");
    c->steps = steps, c->eval_every = 0, c->eval_examples = 8, c->ckpt_every = 0, c->quiet = 1, c->batch = 8;
    c->warmup = 2, c->train_examples = 20; /* a finite set, so the cursor wraps within the test */
    snprintf(c->out, sizeof c->out, "%s", out);
    train_cfg_resolve(c);
}

static void resume_equivalence(void) {
    char a[512], b[512], pa[512], pb[512], sa[512], sb[512];
    path(a, "runA", NULL), path(b, "runB", NULL);
    path(pa, "runA", "model.safetensors"), path(pb, "runB", "model.safetensors");
    path(sa, "runA", "training_state.safetensors"), path(sb, "runB", "training_state.safetensors");
    TrainCfg c;
    EvalResult r;
    tiny_cfg(&c, a, 7);
    CHECK(train_run(&c, &r) == 0, "uninterrupted run: %s", eid_last_error());
    tiny_cfg(&c, b, 7);
    c.stop_after = 3;
    CHECK(train_run(&c, &r) == 0, "interrupted run: %s", eid_last_error());
    tiny_cfg(&c, b, 7);
    snprintf(c.resume, sizeof c.resume, "%s", b);
    CHECK(train_run(&c, &r) == 0, "resumed run: %s", eid_last_error());
    StFile fa, fb;
    if (st_open(&fa, pa) || st_open(&fb, pb)) { CHECK(0, "open: %s", eid_last_error()); return; }
    CHECK(fa.size == fb.size && !memcmp(fa.data, fb.data, fa.data_size), "resumed weights differ from the uninterrupted run");
    st_close(&fa), st_close(&fb);
    if (st_open(&fa, sa) || st_open(&fb, sb)) { CHECK(0, "open: %s", eid_last_error()); return; }
    CHECK(fa.data_size == fb.data_size && !memcmp(fa.data, fb.data, fa.data_size), "resumed optimizer state differs");
    CHECK(!strcmp(st_meta(&fa, "data_cursor"), st_meta(&fb, "data_cursor")), "data cursors differ");
    st_close(&fa), st_close(&fb);
    /* a training state from another step than the weights is rejected */
    char cur[600];
    snprintf(cur, sizeof cur, "%s/current", b); /* the checkpoint a resume reads (train/rundir.h) */
    Model *m = ckpt_load_model(b, NULL);
    ckpt_save_model(m, cur, 99);
    model_free(m);
    tiny_cfg(&c, b, 9);
    snprintf(c.resume, sizeof c.resume, "%s", b);
    CHECK(train_run(&c, &r) != 0 && strstr(eid_last_error(), "step"), "mismatched weights/state must be rejected: %s", eid_last_error());
}

static int count_lines(const char *p) {
    size_t n;
    char *b = read_bytes(p, &n);
    int k = 0;
    for (size_t i = 0; i < n; i++) k += b[i] == '\n';
    int torn = n > 0 && b[n - 1] != '\n';
    free(b);
    return torn ? -k : k;
}

/* A run directory of the older plain layout (files in RUN itself, no metrics position in the
 * training state), left by a run killed after logging a step past its checkpoint, with a torn
 * metrics line and stale temporary files: it resumes, is adopted into the step-directory layout,
 * and ends exactly like the uninterrupted run A (docs/reliability.md "Crash-safe training"). */
static void legacy_adoption(void) {
    char l[512], a[512], cur[600], p[700], q[700];
    path(l, "runL", NULL), path(a, "runA", NULL);
    TrainCfg c;
    EvalResult r;
    tiny_cfg(&c, l, 7);
    c.stop_after = 3;
    CHECK(train_run(&c, &r) == 0, "legacy run: %s", eid_last_error());
    snprintf(cur, sizeof cur, "%s/current", l);
    const char *files[3] = {"config.json", "model.safetensors", "training_state.safetensors"};
    for (int i = 0; i < 3; i++) { /* replace each link by a plain copy of its file */
        size_t n;
        snprintf(p, sizeof p, "%s/%s", l, files[i]);
        char *b = read_bytes(p, &n);
        unlink(p);
        write_bytes(p, b, n);
        free(b);
    }
    snprintf(p, sizeof p, "%s/checkpoints", l);
    CHECK(eid_remove_tree(p) == 0 && unlink(cur) == 0, "cannot make the plain layout");
    Model *m = ckpt_load_model(l, NULL);
    AdamW o;
    TrainState ts;
    snprintf(p, sizeof p, "%s/training_state.safetensors", l);
    CHECK(m && train_state_load(p, m, &o, &ts) == 0, "load: %s", eid_last_error());
    if (!m) return;
    CHECK(ts.step == 3 && ts.metrics_bytes > 0, "state step %ld, metrics position %lld", ts.step, ts.metrics_bytes);
    ts.metrics_bytes = -1; /* not recorded by the older layout */
    CHECK(train_state_save(l, &c, m, &o, &ts) == 0, "save: %s", eid_last_error());
    adamw_free(&o);
    model_free(m);
    snprintf(p, sizeof p, "%s/metrics.jsonl", l);
    FILE *f = fopen(p, "ab");
    fputs("{\"step\":4,\"loss\":1.0}\n{\"step\":5,\"lo", f); /* logged past the checkpoint, then torn */
    fclose(f);
    snprintf(q, sizeof q, "%s/model.safetensors.tmp.12345", l), write_bytes(q, "x", 1);
    snprintf(q, sizeof q, "%s/checkpoints/.partial-step-00000005.12345", l);
    CHECK(eid_mkdir_p(q) == 0, "mkdir");
    tiny_cfg(&c, l, 7);
    snprintf(c.resume, sizeof c.resume, "%s", l);
    CHECK(train_run(&c, &r) == 0, "resume of the plain layout: %s", eid_last_error());
    CHECK(count_lines(p) == 7, "metrics.jsonl has %d lines after the resume, expected 7 (negative: torn)", count_lines(p));
    CHECK(!eid_file_exists(q), "stale partial checkpoint not removed");
    snprintf(q, sizeof q, "%s/model.safetensors.tmp.12345", l);
    CHECK(!eid_file_exists(q), "stale temporary file not removed");
    char link[256];
    snprintf(q, sizeof q, "%s/model.safetensors", l);
    ssize_t k = readlink(q, link, sizeof link - 1);
    CHECK(k > 0 && (link[k] = 0, !strcmp(link, "current/model.safetensors")), "model.safetensors not adopted as a link");
    k = readlink(cur, link, sizeof link - 1);
    CHECK(k > 0 && (link[k] = 0, !strcmp(link, "checkpoints/step-00000007")), "current is not step 7");
    char pa[700];
    snprintf(pa, sizeof pa, "%s/model.safetensors", a);
    size_t na, nl;
    char *ba = read_bytes(pa, &na), *bl = read_bytes(q, &nl);
    CHECK(na == nl && !memcmp(ba, bl, na), "the adopted run's weights differ from the uninterrupted run");
    free(ba), free(bl);
    /* the kept checkpoints: the last two */
    snprintf(q, sizeof q, "%s/checkpoints/step-00000007/model.safetensors", l);
    CHECK(eid_file_exists(q), "step 7 not kept");
}

/* Training-state validation: every refusal names the file and the tensor or key. */
static void state_refusals(void) {
    char dir[512], p[700];
    path(dir, "st", NULL);
    eid_mkdir_p(dir);
    Model *m = tiny_model("longhorn", 11, 8, 0, 1, 0, 4);
    AdamW o, back;
    adamw_init(&o, m);
    TrainCfg c;
    tiny_cfg(&c, dir, 3);
    snprintf(p, sizeof p, "%s/training_state.safetensors", dir);
    const ParamEntry *pe = &m->param[m->nparam - 1];
    struct { int which; real val; const char *needle; } cases[] = {
        {0, 0, NULL}, {0, NAN, "optimizer.exp_avg."}, {0, INFINITY, "optimizer.exp_avg."},
        {1, NAN, "optimizer.exp_avg_sq."}, {1, -1, "negative"},
    };
    for (int i = 0; i < 5; i++) {
        memset(o.m, 0, sizeof(real) * m->n_reals), memset(o.v, 0, sizeof(real) * m->n_reals);
        (cases[i].which ? o.v : o.m)[pe->offset + pe->numel - 1] = cases[i].val;
        TrainState ts = {5, 5, 40, 123};
        CHECK(train_state_save(dir, &c, m, &o, &ts) == 0, "save: %s", eid_last_error());
        eid_clear_error();
        int rc = train_state_load(p, m, &back, &ts);
        if (!cases[i].needle) {
            CHECK(rc == 0 && ts.step == 5 && ts.cursor == 40 && ts.metrics_bytes == 123, "clean state: %s", eid_last_error());
            adamw_free(&back);
        } else
            CHECK(rc != 0 && strstr(eid_last_error(), cases[i].needle) && strstr(eid_last_error(), pe->name),
                  "case %d: %s", i, eid_last_error());
    }
    adamw_free(&o);
    model_free(m);
}

int main(void) {
    eid_runtime_setup(2, 0);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/eidetic-test-ckpt-XXXXXX");
    if (!mkdtemp(tmpdir)) return 2;
    round_trip("longhorn,longhorn", 0, 1);
    gla_g_norm_eps();
    round_trip("longhorn,longhorn", 12, 0);
    round_trip("hawk,gated-ssm", 12, 1); /* Birdie's mixers (docs/layers.md §12, §13) */
    round_trip("bmojo-f,bmojo", 12, 1); /* B'MOJO (docs/bmojo.md): the ssm and score names travel in config.json */
    corruptions();
    resume_equivalence();
    legacy_adoption();
    state_refusals();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", tmpdir);
    return t_summary("test_checkpoint");
}
