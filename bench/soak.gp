# Charts of a soak run (bench/soak.sh): gnuplot -e "csv='x.csv'; out='docs/soak'; warmup=300" bench/soak.gp
# Columns: see HEADER in crates/tidings-bench/src/soak/sampler.rs.
set datafile separator ','
set terminal pngcairo size 900,420 font 'sans,10' noenhanced
set xlabel 'minutes'
set grid
set key below horizontal
set style line 1 lw 2 lc rgb '#1f77b4'
set style line 2 lw 2 lc rgb '#ff7f0e'
set style line 3 lw 2 lc rgb '#2ca02c'
set style line 4 lw 2 lc rgb '#d62728'
set arrow from warmup/60.0, graph 0 to warmup/60.0, graph 1 nohead dt 2 lc rgb '#888888'
set label 'end of warm-up' at warmup/60.0, graph 0.05 offset 0.5,0 tc rgb '#888888'
m(col) = column(col)

set output out.'-memory.png'
set title "The hub's memory and descriptors"
set ylabel 'resident memory (MiB)'
set y2label 'open descriptors'
set yrange [0:*]
set y2range [0:*]
set ytics nomirror
set y2tics
plot csv skip 1 using ($1/60):2 with lines ls 1 title 'RSS (MiB)', \
     '' skip 1 using ($1/60):3 axes x1y2 with lines ls 2 title 'descriptors (right)'

set output out.'-tasks.png'
set title "Connections the hub serves (one task each) and its threads"
set ylabel 'open subscriptions'
set y2label 'threads'
set y2range [0:8]
plot csv skip 1 using ($1/60):5 with lines ls 1 title 'subscriptions open (/metrics)', \
     '' skip 1 using ($1/60):4 axes x1y2 with lines ls 2 title 'threads (right)'
unset y2tics
unset y2label

set output out.'-latency.png'
set title 'Publish-to-receive latency of live events (each 10 s)'
set ylabel 'milliseconds'
set logscale y
set yrange [*:*]
plot csv skip 1 using ($1/60):($11 > 0 ? $11 : 1/0) with lines ls 1 title 'p50', \
     '' skip 1 using ($1/60):($12 > 0 ? $12 : 1/0) with lines ls 4 title 'p99'
unset logscale y

set output out.'-deliveries.png'
set title 'Deliveries, and every event checked: losses and duplicates'
set ylabel 'deliveries per second'
set y2label 'events (cumulative)'
set yrange [0:*]
set y2range [0:*]
set y2tics
plot csv skip 1 using ($1/60):10 with lines ls 1 title 'deliveries/s', \
     '' skip 1 using ($1/60):16 axes x1y2 with lines ls 3 title 'reconnections (right)', \
     '' skip 1 using ($1/60):18 axes x1y2 with lines ls 2 title 'slow readers disconnected, resumed (right)', \
     '' skip 1 using ($1/60):($13 + $14) axes x1y2 with lines ls 4 title 'lost + duplicated (right)'
