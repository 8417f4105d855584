#include "core/arena.h"
#include <stdlib.h>

void arena_begin_measure(Arena *a) { a->base = NULL, a->used = 0, a->cap = 0; }

void arena_commit(Arena *a) {
    a->cap = a->used;
    a->base = eid_aligned_alloc(a->cap ? a->cap : EID_ALIGN);
    a->used = 0;
}

void arena_free(Arena *a) {
    free(a->base);
    a->base = NULL, a->used = a->cap = 0;
}

void *arena_take_bytes(Arena *a, size_t bytes) {
    size_t sz = EID_CDIV(bytes, EID_ALIGN) * EID_ALIGN;
    char *p = a->base ? a->base + a->used : NULL;
    if (a->base && a->used + sz > a->cap) eid_fatal("arena overflow: plan and use disagree");
    a->used += sz;
    return p;
}
