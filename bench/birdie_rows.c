/* birdie_rows.c — how fast Birdie's objective rows are built (docs/birdie.md "Throughput"):
 * rows of L tokens per second, one thread, for a mixture (ntp | birdie | ul2) over a random token
 * stream of a 4096-id text vocabulary. Usage: birdie_rows OBJECTIVE L ROWS */
#include <stdio.h>
#include <stdlib.h>
#include "core/common.h"
#include "core/rng.h"
#include "core/runtime.h"
#include "data/birdie_src.h"

int main(int argc, char **argv) {
    if (argc != 4) return fprintf(stderr, "usage: birdie_rows ntp|birdie|ul2 L ROWS\n"), 2;
    int obj = birdie_objective_parse(argv[1]), L = atoi(argv[2]), rows = atoi(argv[3]);
    BirdieSource b;
    if (obj < 0 || L < 16 || rows < 1 || birdie_source_init(&b, obj, L, 4096) != 0)
        return fprintf(stderr, "birdie_rows: %s\n", eid_last_error()), 2;
    uint64_t n = 1 << 22;
    int32_t *text = eid_xmalloc(sizeof(int32_t) * n);
    Rng r;
    rng_init(&r, 1, 0);
    for (uint64_t i = 0; i < n; i++) text[i] = (int32_t)rng_below(&r, 4096);
    b.text[0] = b.text[1] = (BirdieText){text, n};
    DataSource s;
    source_birdie_init(&s, &b, 1);
    int B = 16, *tok = eid_xmalloc(sizeof(int) * B * L), *lab = eid_xmalloc(sizeof(int) * B * L);
    uint8_t *fl = eid_xmalloc((size_t)B * L);
    double t0 = eid_now();
    for (int done = 0; done < rows; done += B) source_next(&s, B, tok, lab, fl);
    double dt = eid_now() - t0;
    printf("%s L=%d: %d rows in %.3fs = %.0f row tokens/s\n", argv[1], L, rows, dt, (double)rows * L / dt);
    free(text), free(tok), free(lab), free(fl);
    return 0;
}
