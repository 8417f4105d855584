/* arena.h — one aligned block, carved up once.
 *
 * Memory is planned in two passes over the same code: first with a measuring arena (base == NULL,
 * only sizes add up), then with a real one of exactly that size. Nothing is allocated inside
 * forward/backward/step: every buffer is a slice taken at plan time.
 *
 * Two kinds of slice. arena_take: kept — its contents live from one call to the next (activations a
 * forward saves for its backward). arena_scratch: a slice of the shared scratch zone at the end of
 * the block, which every user (a model's sublayers) re-uses from its start: the planner calls
 * arena_scratch_rewind before each user plans, and the zone is as large as the most any one user
 * took. A scratch slice is valid only inside one call (one forward, one backward): the next
 * sublayer's call overwrites it, and nothing may assume it starts zeroed (arena_poison_scratch lets
 * tests fill it with NaN between calls to prove both). docs/design.md "Parameters and memory". */
#ifndef EIDETIC_ARENA_H
#define EIDETIC_ARENA_H
#include "core/common.h"

typedef struct {
    char *base;          /* NULL while measuring */
    size_t used;         /* kept bytes handed out (each slice rounded up to EID_ALIGN) */
    size_t cap;          /* the block: kept bytes, then the scratch zone */
    size_t scratch_off;  /* the zone's offset in the block (the measured kept bytes) */
    size_t scratch_used; /* zone bytes handed out since the last rewind */
    size_t scratch_max;  /* the zone's size: the most taken between two rewinds */
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
void arena_commit(Arena *a);          /* allocate kept + scratch bytes (zeroed) and rewind for the real pass */
void arena_free(Arena *a);
void *arena_take_bytes(Arena *a, size_t bytes);
static inline real *arena_take(Arena *a, size_t n) { return (real *)arena_take_bytes(a, n * sizeof(real)); }
void *arena_scratch_bytes(Arena *a, size_t bytes);
static inline real *arena_scratch(Arena *a, size_t n) { return (real *)arena_scratch_bytes(a, n * sizeof(real)); }
void arena_scratch_rewind(Arena *a);  /* the next user's scratch starts at the zone's start */
size_t arena_bytes(const Arena *a);   /* the whole block: kept + scratch (measured so far, or committed) */
void arena_poison_scratch(Arena *a);  /* tests: the zone filled with NaN (a committed arena) */

#endif
