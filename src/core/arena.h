/* arena.h — one aligned block, carved up once.
 *
 * Memory is planned in two passes over the same code: first with a measuring arena (base == NULL,
 * only sizes add up), then with a real one of exactly that size. Nothing is allocated inside
 * forward/backward/step: every buffer is a slice taken at plan time. */
#ifndef EIDETIC_ARENA_H
#define EIDETIC_ARENA_H
#include "core/common.h"

typedef struct {
    char *base;  /* NULL while measuring */
    size_t used; /* bytes handed out (each slice rounded up to EID_ALIGN) */
    size_t cap;
} Arena;

/* Where committed arenas get their memory: host memory by default (64-byte aligned, zeroed); a
 * device backend installs its allocator here, before any model is planned. alloc(bytes) returns
 * zeroed memory or NULL; free(p) releases it. NULL restores the default. */
typedef struct {
    void *(*alloc)(size_t bytes, void *ctx);
    void (*free)(void *p, void *ctx);
    void *ctx;
} ArenaAllocator;
void arena_set_allocator(const ArenaAllocator *al);

void arena_begin_measure(Arena *a);
void arena_commit(Arena *a);          /* allocate `used` bytes (zeroed) and rewind for the real pass */
void arena_free(Arena *a);
void *arena_take_bytes(Arena *a, size_t bytes);
static inline real *arena_take(Arena *a, size_t n) { return (real *)arena_take_bytes(a, n * sizeof(real)); }

#endif
