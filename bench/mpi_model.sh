#!/usr/bin/env bash
# A model on paper (docs/distributed.md "Scaling: a model on paper"), not a measurement: the
# scaling efficiency of eidetic's data parallelism at 8, 64 and 512 ranks on 25 Gb/s and 200 Gb/s
# networks, from a model's gradient size, its measured compute time per step and the measured
# host-side cost of the exchange.
#   bash bench/mpi_model.sh LABEL PARAMS COMPUTE_MS LOCAL_MS
# PARAMS: parameters (fp32 gradient bytes G = 4·PARAMS); COMPUTE_MS: one rank's step without the
# exchange; LOCAL_MS: the exchange of G measured between 2 ranks on one host (shared memory:
# copies and the shard-order sum, no network), charged again at every rank count.
# Per step, with no overlap of exchange and compute (none is implemented):
#   exchange(R) = 2·(R−1)/R · G / (η·link)  +  2·(R−1)·α  +  LOCAL_MS
#   efficiency(R) = COMPUTE_MS / (COMPUTE_MS + exchange(R))       (weak scaling: batch per rank fixed)
# 2·(R−1)/R·G: what every rank sends and receives (all-to-all of slices + all-gather; a ring
# all-reduce moves the same); 2·(R−1)·α: one message per peer in each of the two collectives.
# Assumed: η = 0.8 of the link rate achieved for large messages; α = 15 µs per message on 25 Gb/s
# Ethernet (TCP), 2 µs on 200 Gb/s InfiniBand/RoCE.
set -eu
label=$1 P=$2 TC=$3 LOCAL=$4
awk -v label="$label" -v P="$P" -v tc="$TC" -v loc="$LOCAL" 'BEGIN {
    G = 4 * P; split("25 200", gbps, " "); split("15 2", alpha_us, " ")
    printf "| %s (G = %.1f MB, compute %.1f ms, host-side exchange %.2f ms) | ranks | network ms | latency ms | exchange ms | efficiency |\n", label, G / 1e6, tc, loc
    printf "|---|---:|---:|---:|---:|---:|\n"
    for (k = 1; k <= 2; k++)
        for (i = 0; i < 3; i++) {
            R = (i == 0) ? 8 : (i == 1) ? 64 : 512
            bw = 0.8 * gbps[k] * 1e9 / 8            # bytes/s achieved
            net = 2 * (R - 1) / R * G / bw * 1e3
            lat = 2 * (R - 1) * alpha_us[k] * 1e-3
            x = net + lat + loc
            printf "| %d Gb/s | %d | %.2f | %.2f | %.2f | %.1f%% |\n", gbps[k], R, net, lat, x, 100 * tc / (tc + x)
        }
}'
