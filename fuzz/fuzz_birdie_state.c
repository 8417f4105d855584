/* fuzz_birdie_state.c — libFuzzer harness for the two readers of Birdie's saved state
 * (docs/birdie.md "Birdie in eidetic"): the first byte picks the reader, the rest is its input.
 *   even: the controller file (birdie_controller.bin) read by bctl_load — the function
 *         `train --resume` uses — for a fixed small controller (6 arms in classes 0,1,1,2,2,2, reward
 *         model 4 wide, state 4, 1 layer), reaching it as a file (a memfd) exactly as on disk;
 *   odd:  the data-source state text ("cursor=N action=a,b,...") read by source_restore for a
 *         7-arm UL2 source.
 * An accepted state must hold a finite, non-negative action; anything ASan/UBSan reports, an abort,
 * or an accepted state that breaks that rule is a bug. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "data/birdie_src.h"
#include "train/birdie_ctl.h"

static const int cls[6] = {0, 1, 1, 2, 2, 2};
static const double a0[6] = {1.0 / 3, 1.0 / 6, 1.0 / 6, 1.0 / 9, 1.0 / 9, 1.0 / 9};

static int check_ctl(const uint8_t *data, size_t size) {
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create("birdie_controller.bin", 0);
        if (fd < 0) perror("memfd_create"), abort();
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) != 0 || (size && pwrite(fd, data, size, 0) != (ssize_t)size)) perror("memfd"), abort();
    BctlCfg cfg = {4, 4, 1, 4, 2, 2};
    BirdieCtl c;
    if (bctl_init(&c, &cfg, 6, cls, a0, 100, 1) != 0) abort();
    if (bctl_load(&c, path) == 0) {
        for (int k = 0; k < 6; k++)
            if (!(c.action[k] >= 0) || !isfinite(c.action[k])) abort(); /* the reader must have refused this */
        double L[6] = {3, 3, 3, 3, 3, 3};
        if (bctl_update(&c, 50, L) != 0) abort(); /* an accepted state must be usable */
    }
    bctl_free(&c);
    return 0;
}

static int check_source(const uint8_t *data, size_t size) {
    static BirdieSource b;
    static int init;
    if (!init && birdie_source_init(&b, BOBJ_UL2, 64, 100) != 0) abort();
    init = 1;
    char *text = malloc(size + 1);
    memcpy(text, data, size), text[size] = 0;
    DataSource s;
    source_birdie_init(&s, &b, 1);
    if (source_restore(&s, text) == 0)
        for (int k = 0; k < b.n_arms; k++)
            if (!(b.action[k] >= 0) || !isfinite(b.action[k])) abort();
    free(text);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    return data[0] % 2 == 0 ? check_ctl(data + 1, size - 1) : check_source(data + 1, size - 1);
}
