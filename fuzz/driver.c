/* driver.c — runs a libFuzzer harness's LLVMFuzzerTestOneInput on files (the regression inputs and
 * seeds), without libFuzzer: built with gcc -fsanitize=address,undefined so it works wherever gcc
 * does (tests/cli/fuzz_regress.sh). Each file is copied into a buffer of exactly its size, so a
 * one-byte over-read is caught. EIDETIC_FUZZ_PLANTED=1 plants such an over-read in the driver
 * itself: the self-check that the sanitizer is really on. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int main(int argc, char **argv) {
    int planted = getenv("EIDETIC_FUZZ_PLANTED") != NULL;
    for (int i = 1; i < argc; i++) {
        FILE *f = fopen(argv[i], "rb");
        if (!f) return fprintf(stderr, "driver: cannot open %s\n", argv[i]), 2;
        fseek(f, 0, SEEK_END);
        long n = ftell(f);
        fseek(f, 0, SEEK_SET);
        uint8_t *b = malloc(n > 0 ? (size_t)n : 1);
        if (n > 0 && fread(b, 1, (size_t)n, f) != (size_t)n) return fprintf(stderr, "driver: short read %s\n", argv[i]), 2;
        fclose(f);
        if (planted) {
            volatile uint8_t x = b[n]; /* one past the end: AddressSanitizer must stop here */
            (void)x;
        }
        LLVMFuzzerTestOneInput(b, (size_t)n);
        free(b);
    }
    printf("driver: %d inputs ran clean\n", argc - 1);
    return 0;
}
