/* dist.h — the processes (ranks) of a multi-process training run: MPI data parallelism
 * (docs/distributed.md).
 *
 * One interface, two builds. The default build and libeidetic.a compile dist.c without MPI: one
 * rank, every collective a no-op. `make MPI=1` (or `make mpi`) links build/eidetic-mpi with the same
 * file compiled by mpicc with -DEIDETIC_MPI: started by an MPI launcher (mpirun, srun) it is rank
 * dist_rank() of dist_world(); started on its own it is one rank, as the default build.
 *
 * Only the main thread calls these functions, outside OpenMP regions (MPI_THREAD_FUNNELED).
 * Every collective is entered by every rank in the same order. A collective that waits longer than
 * the timeout given to dist_init (a rank died or hangs) makes this rank print why and exit with
 * status DIST_EXIT_TIMEOUT; the launcher then stops the whole job. Errors return -1 + eid_error. */
#ifndef EIDETIC_DIST_H
#define EIDETIC_DIST_H
#include <stddef.h>
#include "core/common.h"

#define DIST_EXIT_TIMEOUT 3

/* Join the run: MPI_Init when an MPI launcher started this process (its environment says so),
 * else one rank. timeout_s > 0: the collectives' watchdog (above); 0 = wait forever. Idempotent. */
int dist_init(double timeout_s);
void dist_finalize(void);
/* Stop every rank of the job at once (MPI_Abort) with status code; exit(code) with one rank. */
void dist_abort(int code);
int dist_rank(void);
int dist_world(void);
int dist_mpi_built(void); /* 1 in the MPI build */
/* The run directory the watchdog's message names (eidetic train --resume DIR). */
void dist_set_run_dir(const char *dir);

int dist_barrier(void);
/* v[0..n) = the element-wise sum (exact: integers) / maximum over the ranks. */
int dist_sum_long(long *v, int n);
int dist_max_int(int *v, int n);
/* all[r·bytes ..] = rank r's `mine` (bytes each), for every rank, on every rank. */
int dist_allgather(const void *mine, size_t bytes, void *all);

/* The gradient sum of a run split into world × S shards, bit for bit the sequential shard-order sum
 * of one process with world·S shards (train/shards.h): grad[k] (k < S, n reals each) are this rank's
 * shards, global shard r·S + k. On return grad[0] holds
 *     ((g_0 + g_1) + g_2) + … + g_{world·S−1}
 * on every rank. How: the vector is cut into `world` slices; an all-to-all sends every shard's
 * slice q to rank q, which adds the world·S slices in global shard order; an all-gather returns the
 * summed slices (a reduce-scatter + all-gather, the traffic of a ring all-reduce when S = 1:
 * 2·n·(world−1)/world reals out and in per rank; (S+1)·n·(world−1)/world in general). grad[1..S)
 * are left unspecified. */
int dist_reduce_shards(real *const *grad, int S, size_t n);
/* Seconds spent in dist_reduce_shards (its transfers and its sum) since the last call. */
double dist_take_reduce_seconds(void);

#endif
