# scorecard.gp — the plots of `eidetic scorecard`, drawn from the data files it writes into OUT/plots.
# Called by scripts/plot_scorecard.sh with: dir (OUT/plots), pub (published_mqar.dat), fmt (pngcairo|png|svg).
#   state.EXT    MQAR accuracy vs recurrent state size, log2(bytes) — Zoology's axes — ours (solid, filled
#                markers, best lr per point) beside the published points of docs/tasks.md §1.9 (grey, open)
#   length.EXT   MQAR accuracy vs test sequence length (each mixer's best checkpoint evaluated at longer
#                lengths; points: the accuracy of models trained at each of the grid's lengths)
#   loss_N.EXT   training loss curves of task N (best lr per mixer and d_model)
load dir.'/vars.gp'
ext = (fmt eq 'svg') ? 'svg' : 'png'
if (fmt eq 'svg') { set terminal svg size 1100,650 dynamic font 'sans,11' } else { eval sprintf("set terminal %s size 1100,650 font 'sans,10'", fmt) }
set termoption noenhanced   # titles hold d_model, mad_recall...: no subscripts
set key outside right top spacing 1.1 font ',9'
set grid lc rgb '#dddddd'
n_pub = 16

# ---- 1. recall vs state size ----
set output dir.'/state.'.ext
set title "MQAR recall vs recurrent state size (ours: solid; published, docs/tasks.md §1.9: grey open markers)"
set xlabel 'recurrent state size, log2(bytes)  (Zoology convention: 4 x sum over layers, docs/tasks.md §1.4)'
set ylabel 'accuracy'
set yrange [0:1.05]
set xrange [*:*]
plot for [j=0:n_pub-1] pub index j using 1:2 with linespoints dt 3 lw 1 lc rgb (j < 6 ? '#707070' : '#a8a8a8') \
         pt (j % 7) * 2 + 4 ps 0.9 title columnheader(1), \
     for [i=1:n_state_t] dir.'/state.dat' index (i-1) using 1:2 with linespoints lt i lw 2.5 pt 7 ps 1.4 title state_t[i]
unset output

# ---- 2. accuracy vs sequence length ----
if (n_len_t + n_lengrid_t > 0) {
    set output dir.'/length.'.ext
    set title 'MQAR accuracy vs sequence length (lines: trained at L, tested at longer L with K/L fixed; points: trained at each L)'
    set xlabel 'sequence length L'
    set ylabel 'accuracy'
    set logscale x 2
    set yrange [0:1.05]
    set xrange [*:*]
    plot for [i=1:n_len_t] dir.'/length.dat' index (i-1) using 1:2 with linespoints lt i lw 2 pt 7 title len_t[i], \
         for [i=1:n_lengrid_t] dir.'/lengrid.dat' index (i-1) using 1:2 with linespoints lt i dt 2 lw 1 pt 5 ps 1.6 title lengrid_t[i]
    unset logscale x
    unset output
}

# ---- 3. loss curves, one plot per task ----
set yrange [*:*]
set logscale y
set xlabel 'step'
set ylabel 'training loss (window mean)'
do for [k=1:n_loss] {
    eval sprintf('n_cur = exists("n_loss%d_t") ? n_loss%d_t : 0', k, k)
    if (n_cur > 0) {
        set output sprintf('%s/loss_%d.%s', dir, k, ext)
        set title sprintf('training loss — %s (best lr per mixer and d_model)', loss_task[k])
        eval sprintf('plot for [i=1:%d] "%s/loss_%d.dat" index (i-1) using 1:2 with lines lw 2 title loss%d_t[i]', n_cur, dir, k, k)
        unset output
    }
}
