#include "core/arena.h"
#include <math.h>
#include <stdlib.h>

static void *host_alloc(size_t bytes, void *ctx) { return eid_aligned_alloc(bytes); }
static void host_free(void *p, void *ctx) { free(p); }
static ArenaAllocator g_alloc = {host_alloc, host_free, NULL};

void arena_set_allocator(const ArenaAllocator *al) {
    g_alloc = al ? *al : (ArenaAllocator){host_alloc, host_free, NULL};
}

void arena_begin_measure(Arena *a) { *a = (Arena){0}; }

void arena_scratch_rewind(Arena *a) {
    if (a->scratch_used > a->scratch_max) {
        if (a->base) eid_fatal("arena overflow: plan and use disagree (scratch)");
        a->scratch_max = a->scratch_used;
    }
    a->scratch_used = 0;
}

void arena_commit(Arena *a) {
    arena_scratch_rewind(a); /* the last user's scratch counts too */
    a->scratch_off = a->used;
    a->cap = a->used + a->scratch_max;
    a->base = g_alloc.alloc(a->cap ? a->cap : EID_ALIGN, g_alloc.ctx);
    if (!a->base) eid_fatal("out of memory: the arena allocator could not provide %zu bytes", a->cap);
    a->used = 0;
}

void arena_free(Arena *a) {
    if (a->base) g_alloc.free(a->base, g_alloc.ctx);
    *a = (Arena){0};
}

void *arena_take_bytes(Arena *a, size_t bytes) {
    size_t sz = EID_CDIV(bytes, EID_ALIGN) * EID_ALIGN;
    char *p = a->base ? a->base + a->used : NULL;
    if (a->base && a->used + sz > a->scratch_off) eid_fatal("arena overflow: plan and use disagree");
    a->used += sz;
    return p;
}

void *arena_scratch_bytes(Arena *a, size_t bytes) {
    size_t sz = EID_CDIV(bytes, EID_ALIGN) * EID_ALIGN;
    char *p = a->base ? a->base + a->scratch_off + a->scratch_used : NULL;
    if (a->base && a->scratch_used + sz > a->scratch_max) eid_fatal("arena overflow: plan and use disagree (scratch)");
    a->scratch_used += sz;
    return p;
}

static size_t arena_scratch_size(const Arena *a) { return a->base ? a->scratch_max : EID_MAX(a->scratch_max, a->scratch_used); }

size_t arena_bytes(const Arena *a) { return a->base ? a->cap : a->used + arena_scratch_size(a); }

void arena_poison_scratch(Arena *a) {
    if (!a->base) return;
    real *z = (real *)(a->base + a->scratch_off);
    for (size_t i = 0, n = a->scratch_max / sizeof(real); i < n; i++) z[i] = (real)NAN;
}
