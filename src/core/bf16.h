/* bf16.h — the one definition of eidetic's fp32 <-> bf16 conversion (docs/performance.md "Mixed
 * precision"): round to nearest, ties to even; a NaN stays a quiet NaN of the same sign; widening is
 * exact. Used by the bf16 products (core/gemm_onednn.c) and by the kernels that save activations in
 * bf16 for backward, so both see the same bits of a value. */
#ifndef EIDETIC_BF16_H
#define EIDETIC_BF16_H
#include <stdint.h>
#include <string.h>

static inline uint16_t eid_bf16_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    uint32_t quiet_nan = (u >> 16) | 0x40u;
    return (uint16_t)((u & 0x7fffffffu) > 0x7f800000u ? quiet_nan : rounded);
}

static inline float eid_bf16_float(uint16_t b) {
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

#endif
