/* xent.c — softmax cross-entropy over labelled rows, fused with its gradient. */
#include <math.h>
#include "kernels/kernels.h"

double k_xent_fwd_bwd(real *logits, const int *labels, int M, int V, real scale, uint8_t *correct) {
    double total = 0;
#pragma omp parallel for reduction(+ : total) schedule(static)
    for (int m = 0; m < M; m++) {
        real *z = logits + (size_t)m * V;
        int am = 0;
        real mx = z[0];
        for (int v = 1; v < V; v++)
            if (z[v] > mx) mx = z[v], am = v;
        int y = labels[m];
        real zy = z[y];
        double sum = 0;
        for (int v = 0; v < V; v++) {
            real e = rexp(z[v] - mx);
            z[v] = e;
            sum += e;
        }
        total += (double)mx + log(sum) - (double)zy; /* −log softmax_y, from the log-sum-exp */
        real inv = (real)(1.0 / sum);
        for (int v = 0; v < V; v++) z[v] = z[v] * inv * scale;
        z[y] -= scale;
        if (correct) correct[m] = (am == y);
    }
    return total;
}
