# mixture_pb_tiny.gp — written by `eidetic plot`; redraws mixture_pb_tiny.{png,svg} from anywhere: gnuplot mixture_pb_tiny.gp
# (the data is mixture_pb_tiny.dat beside this script; gnuplot -e "formats='svg'" mixture_pb_tiny.gp draws the SVG only)
here = ''
do for [i = strlen(ARG0):1:-1] { if (here eq '' && ARG0[i:i] eq '/') { here = ARG0[1:i] } }
if (!exists('data')) data = here.'mixture_pb_tiny'.'.dat'
if (!exists('outbase')) outbase = here.'mixture_pb_tiny'
if (!exists('formats')) formats = 'png svg'
array names[7] = ['ntp', 'prefix-lm', 'copying', 'deshuffling', 'infilling', 'autoencoding', 'selective-copying']
array colors[10] = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf']
set datafile missing 'nan'
set grid lc rgb '#dddddd'
set key at screen 0.78, graph 1 left top Left reverse font ',9' spacing 1.1
set xrange [0:800]
set lmargin at screen 0.09
set rmargin at screen 0.76
do for [fmt in formats] {
  if (fmt eq 'svg') { set terminal svg size 1100,480 dynamic noenhanced font 'sans,11' background '#ffffff' } else {
    if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) { set terminal pngcairo size 1100,480 noenhanced font 'sans,10' } else { set terminal png size 1100,480 noenhanced } }
  set output outbase.'.'.fmt
  set title 'pb-tiny, --objective birdie, 800 steps: class mixture at each controller decision'
  set xlabel 'training step'
  set ylabel 'share of the training samples'
  set yrange [0:1.06]
  set ytics 0,0.2,1
  unset y2tics
  unset y2label
  unset arrow
  set style fill solid 0.9 noborder
  plot for [i=7:1:-1] data index 0 using 1:(sum [c=1:i] column(3+c)) with fillsteps lc rgb colors[(i-1)%10+1] title names[i], \
    data index 0 using 1:(strcol(3) eq 'explore' ? 1.03 : NaN) with points pt 7 ps 0.6 lc rgb 'black' title 'exploration decision', \
    data index 0 using 1:(strcol(3) eq 'greedy' ? 1.03 : NaN) with points pt 6 ps 0.6 lc rgb '#555555' title 'greedy decision'
  set style fill empty
  set ytics autofreq
  set yrange [*:*]
  unset output
}
