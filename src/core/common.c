/* common.c — error buffer, logging, allocation helpers. */
#include "core/common.h"
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef __linux__
#include <sys/mman.h>
#endif

static _Thread_local char g_err[1024];
int eid_log_level = 1;

void eid_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_err, sizeof g_err, fmt, ap);
    va_end(ap);
}
const char *eid_last_error(void) { return g_err[0] ? g_err : "unknown error"; }
void eid_clear_error(void) { g_err[0] = 0; }

/* Where log lines go: stderr unless a library user installed a sink (set once, before other threads
 * start; see eid_set_log_sink). */
static EidLogSink g_sink;
static void *g_sink_user;
void eid_set_log_sink(EidLogSink fn, void *user) { g_sink = fn, g_sink_user = user; }

static void emit(int level, const char *prefix, const char *fmt, va_list ap) {
    if (g_sink) {
        char line[2048];
        vsnprintf(line, sizeof line, fmt, ap);
        g_sink(level, line, g_sink_user);
        return;
    }
    fputs(prefix, stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

void eid_fatal(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    emit(0, "eidetic: internal error: ", fmt, ap);
    va_end(ap);
    abort();
}

void eid_log(const char *fmt, ...) {
    if (eid_log_level < 1) return;
    va_list ap;
    va_start(ap, fmt);
    emit(1, "eidetic: ", fmt, ap);
    va_end(ap);
}

void *eid_xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) eid_fatal("out of memory allocating %zu bytes", n);
    return p;
}
void *eid_xcalloc(size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) eid_fatal("out of memory allocating %zu x %zu bytes", n, size);
    return p;
}
void *eid_xrealloc(void *p, size_t n) {
    void *q = realloc(p, n ? n : 1);
    if (!q) eid_fatal("out of memory growing a buffer to %zu bytes", n);
    return q;
}
/* Buffers of EID_HUGE_PAGE bytes or more (weights, arenas, bf16 copies, the read test) start on a
 * huge-page boundary and are offered to the kernel's transparent huge pages: where THP is "madvise"
 * (Debian's default) plain allocations get 4 KiB pages, and streaming a decode step's hundreds of MB
 * of weights then walks the page tables every 4 KiB (docs/performance.md "Huge pages": what it
 * measured). EIDETIC_HUGEPAGES=0 turns it off; elsewhere than Linux it is a no-op. */
#ifdef MADV_HUGEPAGE
enum { EID_HUGE_PAGE = 2 << 20 };
static int huge_pages_wanted(void) { /* read each time: large allocations are few, and tests flip it */
    const char *e = getenv("EIDETIC_HUGEPAGES");
    return !(e && strcmp(e, "0") == 0);
}
#endif

void *eid_aligned_alloc_try(size_t n) {
    size_t sz = EID_CDIV(n ? n : 1, EID_ALIGN) * EID_ALIGN, align = EID_ALIGN;
#ifdef MADV_HUGEPAGE
    int huge = sz >= EID_HUGE_PAGE && huge_pages_wanted();
    if (huge) sz = EID_CDIV(sz, EID_HUGE_PAGE) * EID_HUGE_PAGE, align = EID_HUGE_PAGE;
#endif
    void *p = aligned_alloc(align, sz);
    if (!p) return NULL;
#ifdef MADV_HUGEPAGE
    if (huge) (void)madvise(p, sz, MADV_HUGEPAGE); /* advice only: a kernel without THP ignores it */
#endif
    memset(p, 0, sz);
    return p;
}

void *eid_aligned_alloc(size_t n) {
    void *p = eid_aligned_alloc_try(n);
    if (!p) eid_fatal("out of memory allocating %zu bytes", n);
    return p;
}
char *eid_xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = eid_xmalloc(n);
    memcpy(p, s, n);
    return p;
}
double eid_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}
