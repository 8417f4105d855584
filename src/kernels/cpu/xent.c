/* xent.c — softmax cross-entropy over labelled rows, fused with its gradient. */
#include <math.h>
#include "kernels/kernels.h"

double k_xent_fwd_bwd(real *logits, const int *labels, int M, int V, real scale, uint8_t *correct) {
    double total = 0;
#pragma omp parallel for reduction(+ : total) schedule(static)
    for (int m = 0; m < M; m++) {
        real *z = logits + (size_t)m * V;
        real mx = z[0];
#pragma omp simd reduction(max : mx)
        for (int v = 1; v < V; v++) mx = z[v] > mx ? z[v] : mx;
        int am = 0; /* the first index of the maximum, as a sequential argmax would pick */
        while (z[am] != mx) am++;
        int y = labels[m];
        real zy = z[y];
        double sum = 0;
#pragma omp simd reduction(+ : sum)
        for (int v = 0; v < V; v++) {
            real e = rexp(z[v] - mx);
            z[v] = e;
            sum += e;
        }
        total += (double)mx + log(sum) - (double)zy; /* −log softmax_y, from the log-sum-exp */
        real inv = (real)(1.0 / sum);
#pragma omp simd
        for (int v = 0; v < V; v++) z[v] = z[v] * inv * scale;
        z[y] -= scale;
        if (correct) correct[m] = (am == y);
    }
    return total;
}
