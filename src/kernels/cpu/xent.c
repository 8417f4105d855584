/* xent.c — softmax cross-entropy over labelled rows, fused with its gradient. */
#include <math.h>
#include "kernels/kernels.h"

#define XENT_LANES 16 /* partial sums per row: one SIMD vector, so the exp loop vectorises */

/* exp(z − mx) in place; returns Σ exp(z − mx) */
static double exp_shift_sum(real *restrict z, int V, real mx) {
    _Alignas(EID_ALIGN) real part[XENT_LANES] = {0};
    int v = 0;
    for (; v + XENT_LANES <= V; v += XENT_LANES) {
#pragma omp simd aligned(part : EID_ALIGN)
        for (int l = 0; l < XENT_LANES; l++) {
            real e = rexp(z[v + l] - mx);
            z[v + l] = e;
            part[l] += e;
        }
    }
    for (; v < V; v++) z[v] = rexp(z[v] - mx), part[0] += z[v];
    double sum = 0;
    for (int l = 0; l < XENT_LANES; l++) sum += part[l];
    return sum;
}

double k_xent_fwd_bwd(real *logits, const int *labels, int M, int V, real scale, uint8_t *correct) {
    double total = 0;
#pragma omp parallel for reduction(+ : total) schedule(static)
    for (int m = 0; m < M; m++) {
        real *restrict z = logits + (size_t)m * V;
        real mx = z[0];
#pragma omp simd reduction(max : mx)
        for (int v = 1; v < V; v++) mx = z[v] > mx ? z[v] : mx;
        /* the first index of the maximum, as a sequential argmax would pick. A NaN maximum equals no
         * element: the search is bounded by V and the row counts as wrong (am = -1); its loss is NaN
         * and reaches the caller's non-finite-loss check (the loop once ran off the row). */
        int am = 0;
        while (am < V && z[am] != mx) am++;
        if (am == V) am = -1;
        int y = labels[m];
        real zy = z[y];
        double sum = exp_shift_sum(z, V, mx);
        total += (double)mx + log(sum) - (double)zy; /* −log softmax_y, from the log-sum-exp */
        real f = (real)(scale / sum);
#pragma omp simd
        for (int v = 0; v < V; v++) z[v] *= f;
        z[y] -= scale;
        if (correct) correct[m] = (am == y);
    }
    return total;
}
