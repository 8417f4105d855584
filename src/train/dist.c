/* dist.c — the ranks of a multi-process run (dist.h): MPI with -DEIDETIC_MPI, one rank without. */
#include "train/dist.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int d_rank = 0, d_world = 1;
static double reduce_s;
static char run_dir[512] = "DIR";

void dist_set_run_dir(const char *dir) { snprintf(run_dir, sizeof run_dir, "%s", dir); }

int dist_rank(void) { return d_rank; }
int dist_world(void) { return d_world; }

double dist_take_reduce_seconds(void) {
    double s = reduce_s;
    reduce_s = 0;
    return s;
}

/* out[i] = Σ_j src[j][i] for j = 0..m−1, added in that order (out may be src[0]): the order of
 * shards.c's one-process sum, so that the distributed sum has its bits */
static void ordered_sum(real *out, const real *const *src, int m, size_t n) {
    const size_t blk = 4096;
#pragma omp parallel for schedule(static)
    for (size_t i0 = 0; i0 < n; i0 += blk) {
        size_t i1 = EID_MIN(n, i0 + blk);
        if (out != src[0]) memcpy(out + i0, src[0] + i0, sizeof(real) * (i1 - i0));
        for (int j = 1; j < m; j++) {
            const real *restrict s = src[j];
#pragma omp simd
            for (size_t i = i0; i < i1; i++) out[i] += s[i];
        }
    }
}

#ifndef EIDETIC_MPI
/* ---- one rank ---- */
int dist_init(double timeout_s) { return 0; }
void dist_finalize(void) {}
void dist_abort(int code) { exit(code); }
int dist_mpi_built(void) { return 0; }
int dist_barrier(void) { return 0; }
int dist_sum_long(long *v, int n) { return 0; }
int dist_max_int(int *v, int n) { return 0; }
int dist_allgather(const void *mine, size_t bytes, void *all) {
    memmove(all, mine, bytes);
    return 0;
}
int dist_reduce_shards(real *const *grad, int S, size_t n) {
    double t0 = eid_now();
    ordered_sum(grad[0], (const real *const *)grad, S, n);
    reduce_s += eid_now() - t0;
    return 0;
}

#else
/* ---- MPI ---- */
#include <mpi.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

static int d_inited; /* 1: we called MPI_Init (and call MPI_Finalize) */
static double d_timeout;
static real *d_buf;
static size_t d_buf_n;
#define REAL_T (sizeof(real) == sizeof(float) ? MPI_FLOAT : MPI_DOUBLE)

/* ---- the watchdog: a collective waiting longer than d_timeout ends this rank ---- */
static _Atomic long long coll_since_ms; /* 0: not in a collective */
static _Atomic(const char *) coll_what;

static long long now_ms(void) { return (long long)(eid_now() * 1e3); }

static void *watchdog(void *arg) {
    (void)arg;
    for (;;) {
        usleep(100000);
        long long since = atomic_load(&coll_since_ms);
        if (since && now_ms() - since > (long long)(d_timeout * 1e3)) {
            /* the other ranks are gone or stuck: leave without MPI_Finalize, so that the launcher
             * (mpirun, srun) ends the whole job; rank 0's last committed checkpoint is complete
             * (written atomically, docs/reliability.md) */
            fprintf(stderr, "eidetic: error: rank %d of %d: no answer from the other ranks for %.0f s in %s "
                            "(--dist-timeout): a rank died or hangs; stopping the job. The last complete checkpoint "
                            "is intact: continue with eidetic train --resume %s\n",
                    d_rank, d_world, d_timeout, atomic_load(&coll_what), run_dir);
            _exit(DIST_EXIT_TIMEOUT);
        }
    }
    return NULL;
}

static void enter(const char *what) {
    atomic_store(&coll_what, what);
    atomic_store(&coll_since_ms, now_ms());
}
static void leave(void) { atomic_store(&coll_since_ms, 0); }

static int mpi_check(int rc, const char *what) {
    leave();
    if (rc == MPI_SUCCESS) return 0;
    char msg[MPI_MAX_ERROR_STRING] = "";
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    return eid_error("rank %d of %d: MPI %s failed: %s", d_rank, d_world, what, msg), -1;
}

/* An MPI launcher's environment: Open MPI's mpirun, PMIx (srun --mpi=pmix, prterun), PMI (MPICH's
 * hydra, srun --mpi=pmi2). Started without one, MPI_Init would try to start a runtime of its own. */
static int launched_by_mpi(void) {
    static const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        if (getenv(vars[i])) return 1;
    return 0;
}

int dist_mpi_built(void) { return 1; }

int dist_init(double timeout_s) {
    int already = 0;
    MPI_Initialized(&already);
    if (already || !launched_by_mpi()) return 0;
    int provided;
    if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        return eid_error("MPI_Init failed (started by mpirun/srun?)"), -1;
    d_inited = 1;
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &d_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &d_world);
    d_timeout = timeout_s;
    if (d_world > 1 && timeout_s > 0) {
        pthread_t th;
        pthread_attr_t at;
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&th, &at, watchdog, NULL) != 0) return eid_error("dist: cannot start the watchdog thread"), -1;
        pthread_attr_destroy(&at);
    }
    return 0;
}

void dist_finalize(void) {
    if (!d_inited) return;
    enter("MPI_Finalize");
    MPI_Finalize();
    leave();
    d_inited = 0;
    free(d_buf), d_buf = NULL, d_buf_n = 0;
}

void dist_abort(int code) {
    if (d_inited && d_world > 1) MPI_Abort(MPI_COMM_WORLD, code);
    exit(code);
}

int dist_barrier(void) {
    if (d_world == 1) return 0;
    enter("a barrier");
    return mpi_check(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier");
}

int dist_sum_long(long *v, int n) {
    if (d_world == 1) return 0;
    enter("a label-count all-reduce");
    return mpi_check(MPI_Allreduce(MPI_IN_PLACE, v, n, MPI_LONG, MPI_SUM, MPI_COMM_WORLD), "MPI_Allreduce (sum)");
}

int dist_max_int(int *v, int n) {
    if (d_world == 1) return 0;
    enter("a control all-reduce");
    return mpi_check(MPI_Allreduce(MPI_IN_PLACE, v, n, MPI_INT, MPI_MAX, MPI_COMM_WORLD), "MPI_Allreduce (max)");
}

int dist_allgather(const void *mine, size_t bytes, void *all) {
    if (d_world == 1) return memmove(all, mine, bytes), 0;
    if (bytes > (size_t)1 << 30) return eid_error("dist_allgather: %zu bytes per rank: too many", bytes), -1;
    enter("an all-gather");
    return mpi_check(MPI_Allgather(mine, (int)bytes, MPI_BYTE, all, (int)bytes, MPI_BYTE, MPI_COMM_WORLD),
                     "MPI_Allgather");
}

static size_t slice_lo(size_t n, int q) { return n * (size_t)q / (size_t)d_world; }

int dist_reduce_shards(real *const *grad, int S, size_t n) {
    double t0 = eid_now();
    if (d_world == 1) {
        ordered_sum(grad[0], (const real *const *)grad, S, n);
        reduce_s += eid_now() - t0;
        return 0;
    }
    int W = d_world;
    size_t lo = slice_lo(n, d_rank), mine = slice_lo(n, d_rank + 1) - lo;
    if (n / (size_t)W + 1 > (size_t)0x7fffffff) return eid_error("dist: %zu gradient values: too many for one rank's slice", n), -1;
    /* buf[k][p][mine]: the slice this rank owns of rank p's shard k */
    size_t need = (size_t)S * W * EID_MAX(mine, 1);
    if (need > d_buf_n) free(d_buf), d_buf = eid_xmalloc(sizeof(real) * need), d_buf_n = need;
    int *cnt = eid_xmalloc(sizeof(int) * 4 * W), *dsp = cnt + W, *rcnt = cnt + 2 * W, *rdsp = cnt + 3 * W;
    for (int q = 0; q < W; q++) {
        cnt[q] = (int)(slice_lo(n, q + 1) - slice_lo(n, q)), dsp[q] = (int)slice_lo(n, q);
        rcnt[q] = (int)mine, rdsp[q] = (int)(q * mine);
    }
    int rc = 0;
    for (int k = 0; k < S && rc == 0; k++) {
        enter("the gradient all-to-all");
        rc = mpi_check(MPI_Alltoallv(grad[k], cnt, dsp, REAL_T, d_buf + (size_t)k * W * mine, rcnt, rdsp, REAL_T,
                                     MPI_COMM_WORLD), "MPI_Alltoallv (gradients)");
    }
    if (rc == 0) {
        /* global shard p·S + k, in increasing order: p outer, k inner */
        const real **src = eid_xmalloc(sizeof(real *) * (size_t)W * S);
        for (int p = 0; p < W; p++)
            for (int k = 0; k < S; k++) src[p * S + k] = d_buf + ((size_t)k * W + p) * mine;
        ordered_sum(grad[0] + lo, src, W * S, mine);
        free(src);
        enter("the gradient all-gather");
        rc = mpi_check(MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, grad[0], cnt, dsp, REAL_T, MPI_COMM_WORLD),
                       "MPI_Allgatherv (gradients)");
    }
    free(cnt);
    reduce_s += eid_now() - t0;
    return rc;
}
#endif
