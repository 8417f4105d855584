/* mpi_reduce.c — bench/mpi.sh's all-reduce timing (docs/distributed.md): the gradient exchange of a
 * multi-process run, alone, on N reals per rank.
 *
 *   mpirun -np R build/bench/mpi_reduce N [REPS]
 *
 * Times, after a barrier each repetition (so that no rank's lateness is counted), dist_reduce_shards
 * with one shard per rank (eidetic's deterministic exchange: all-to-all of slices, a shard-order sum,
 * all-gather) and MPI_Allreduce(MPI_SUM) on the same buffer (Open MPI's own, whose summation order
 * is unspecified), and checks that dist_reduce_shards gave every rank the same sum as the
 * sequential one. Prints one line per method: the median and fastest times and the bus bandwidth
 * 2·(R−1)/R·bytes / time (the bytes every rank sends and receives in a ring all-reduce: the figure
 * that projects to other rank counts and networks). */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "train/dist.h"

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* rank p's value i: small multiples of 0.01 + p/8, so that the order of the sum shows in the bits
 * (one function for both uses: the same rounding) */
__attribute__((noinline)) static real val(size_t i, int p) { return (real)((i * 7 + (size_t)p * 3) % 101) * 0.01f + p * 0.125f; }

int main(int argc, char **argv) {
    if (argc < 2) return fprintf(stderr, "usage: mpirun -np R %s N_REALS [REPS]\n", argv[0]), 2;
    size_t n = strtoull(argv[1], NULL, 10);
    int reps = argc > 2 ? atoi(argv[2]) : 20;
    if (n < 1 || reps < 1) return fprintf(stderr, "mpi_reduce: N and REPS must be >= 1\n"), 2;
    if (dist_init(0) != 0) return fprintf(stderr, "mpi_reduce: %s\n", eid_last_error()), 1;
    int R = dist_world(), r = dist_rank();
    real *g = eid_xmalloc(sizeof(real) * n);
    double *t = eid_xmalloc(sizeof(double) * reps), med[2], lo[2];
    for (int method = 0; method < 2; method++) {
        for (int k = 0; k < reps + 2; k++) {
            for (size_t i = 0; i < n; i++) g[i] = val(i, r);
            dist_barrier();
            double t0 = eid_now();
            if (method == 0) {
                real *gs[1] = {g};
                if (dist_reduce_shards(gs, 1, n) != 0) return fprintf(stderr, "mpi_reduce: %s\n", eid_last_error()), 1;
            } else {
                MPI_Allreduce(MPI_IN_PLACE, g, (int)n, sizeof(real) == 4 ? MPI_FLOAT : MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
            }
            if (k >= 2) t[k - 2] = eid_now() - t0; /* two warm-up rounds */
        }
        qsort(t, reps, sizeof *t, cmp_d);
        med[method] = t[reps / 2], lo[method] = t[0];
        if (method == 0) { /* the sequential rank-order sum, computed here */
            size_t bad = 0;
            for (size_t i = 0; i < n; i++) {
                real s = 0;
                for (int p = 0; p < R; p++) {
                    s = p == 0 ? val(i, p) : s + val(i, p);
                }
                bad += memcmp(&s, &g[i], sizeof s) != 0;
            }
            if (bad) return fprintf(stderr, "mpi_reduce: rank %d: %zu values differ from the sequential sum\n", r, bad), 1;
        }
    }
    if (r == 0) {
        double bytes = (double)n * sizeof(real), bus = 2.0 * (R - 1) / R * bytes;
        static const char *name[2] = {"dist_reduce_shards (deterministic)", "MPI_Allreduce (Open MPI)"};
        for (int m = 0; m < 2; m++)
            printf("%-36s ranks %d  reals %zu (%.1f MB)  median %.3f ms (bus %.2f GB/s)  fastest %.3f ms (bus %.2f GB/s)\n",
                   name[m], R, n, bytes / 1e6, med[m] * 1e3, bus / med[m] / 1e9, lo[m] * 1e3, bus / lo[m] / 1e9);
    }
    free(g), free(t);
    dist_finalize();
    return 0;
}
