#include "core/arena.h"
#include <stdlib.h>

static void *host_alloc(size_t bytes, void *ctx) { return eid_aligned_alloc(bytes); }
static void host_free(void *p, void *ctx) { free(p); }
static ArenaAllocator g_alloc = {host_alloc, host_free, NULL};

void arena_set_allocator(const ArenaAllocator *al) {
    g_alloc = al ? *al : (ArenaAllocator){host_alloc, host_free, NULL};
}

void arena_begin_measure(Arena *a) { a->base = NULL, a->used = 0, a->cap = 0; }

void arena_commit(Arena *a) {
    a->cap = a->used;
    a->base = g_alloc.alloc(a->cap ? a->cap : EID_ALIGN, g_alloc.ctx);
    if (!a->base) eid_fatal("out of memory: the arena allocator could not provide %zu bytes", a->cap);
    a->used = 0;
}

void arena_free(Arena *a) {
    if (a->base) g_alloc.free(a->base, g_alloc.ctx);
    a->base = NULL, a->used = a->cap = 0;
}

void *arena_take_bytes(Arena *a, size_t bytes) {
    size_t sz = EID_CDIV(bytes, EID_ALIGN) * EID_ALIGN;
    char *p = a->base ? a->base + a->used : NULL;
    if (a->base && a->used + sz > a->cap) eid_fatal("arena overflow: plan and use disagree");
    a->used += sz;
    return p;
}
