/* rng.h — counter-based random numbers (Philox4x32-10).
 *
 * A stream is (key, counter): the n-th number of a stream is a pure function of (key, n), so data
 * example j and parameter tensor p can each be generated independently and reproducibly, in any
 * order and on any thread. Derive sub-keys with rng_derive(key, tag...). */
#ifndef EIDETIC_RNG_H
#define EIDETIC_RNG_H
#include <stdint.h>

typedef struct {
    uint64_t key;
    uint64_t counter; /* advances by one per 4 x 32-bit block */
    uint32_t buf[4];
    int avail; /* unread words left in buf */
} Rng;

uint64_t rng_derive(uint64_t key, uint64_t tag); /* a new independent key */
void rng_init(Rng *r, uint64_t key, uint64_t counter);
uint32_t rng_u32(Rng *r);
uint64_t rng_u64(Rng *r);
double rng_uniform(Rng *r);                     /* [0, 1) with 53 random bits */
double rng_normal(Rng *r);                      /* standard normal (Box-Muller) */
uint64_t rng_below(Rng *r, uint64_t n);         /* uniform in [0, n), unbiased; n > 0 */
void rng_philox(uint64_t key, uint64_t ctr_hi, uint64_t ctr_lo, uint32_t out[4]);

#endif
