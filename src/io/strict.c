/* strict.c — see strict.h. */
#include "io/strict.h"
#include <cjson/cJSON.h>
#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* shown in messages: at most 40 characters of the offending text */
static const char *shown(const char *s, char *buf, size_t n) {
    size_t k = strlen(s);
    if (k < n) return s;
    snprintf(buf, n, "%.*s...", (int)(n - 4), s);
    return buf;
}

/* -?[0-9]+, nothing else */
static int is_decimal_int(const char *s) {
    const char *p = s + (*s == '-');
    if (!*p) return 0;
    for (; *p; p++)
        if (*p < '0' || *p > '9') return 0;
    return 1;
}

int strict_long(const char *s, long lo, long hi, long *out, const char *what) {
    char b[48];
    if (!s || !is_decimal_int(s)) {
        if (lo <= INT_MIN && hi >= INT_MAX) /* any integer of the type: no range to show */
            return eid_error("%s: expected an integer, got '%s'", what, s ? shown(s, b, sizeof b) : ""), -1;
        return eid_error("%s: expected an integer in [%ld, %ld], got '%s'", what, lo, hi, s ? shown(s, b, sizeof b) : ""), -1;
    }
    errno = 0;
    long v = strtol(s, NULL, 10);
    if (errno == ERANGE || v < lo || v > hi)
        return eid_error("%s: %s is out of range (expected an integer in [%ld, %ld])", what, shown(s, b, sizeof b), lo, hi),
               -1;
    *out = v;
    return 0;
}

int strict_int(const char *s, int lo, int hi, int *out, const char *what) {
    long v;
    if (strict_long(s, lo, hi, &v, what) != 0) return -1;
    *out = (int)v;
    return 0;
}

int strict_u64(const char *s, uint64_t *out, const char *what) {
    char b[48];
    if (!s || !is_decimal_int(s) || s[0] == '-')
        return eid_error("%s: expected a non-negative integer, got '%s'", what, s ? shown(s, b, sizeof b) : ""), -1;
    errno = 0;
    unsigned long long v = strtoull(s, NULL, 10);
    if (errno == ERANGE)
        return eid_error("%s: %s is out of range (expected an integer in [0, %llu])", what, shown(s, b, sizeof b),
                         (unsigned long long)UINT64_MAX), -1;
    *out = (uint64_t)v;
    return 0;
}

/* -?digits[.digits][(e|E)[-+]?digits], or -?.digits[...] */
static int is_decimal_real(const char *s) {
    const char *p = s + (*s == '-');
    int digits = 0;
    while (*p >= '0' && *p <= '9') p++, digits++;
    if (*p == '.') {
        p++;
        while (*p >= '0' && *p <= '9') p++, digits++;
    }
    if (!digits) return 0;
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '-' || *p == '+') p++;
        if (!(*p >= '0' && *p <= '9')) return 0;
        while (*p >= '0' && *p <= '9') p++;
    }
    return *p == 0;
}

int strict_double(const char *s, double lo, double hi, double *out, const char *what) {
    char b[48];
    char range[80] = "a number (finite)";
    if (lo > -DBL_MAX || hi < DBL_MAX) snprintf(range, sizeof range, "a number in [%g, %g]", lo, hi);
    if (!s || !is_decimal_real(s))
        return eid_error("%s: expected %s, got '%s'", what, range, s ? shown(s, b, sizeof b) : ""), -1;
    double v = strtod(s, NULL);
    if (!isfinite(v) || v < lo || v > hi)
        return eid_error("%s: %s is out of range (expected %s)", what, shown(s, b, sizeof b), range), -1;
    *out = v;
    return 0;
}

int strict_split(const char *s, char sep, char *buf, size_t bufsize, char **items, int max_items, const char *what) {
    size_t len = strlen(s);
    if (len >= bufsize) return eid_error("%s: list too long (at most %zu characters)", what, bufsize - 1), -1;
    memcpy(buf, s, len + 1);
    int n = 0;
    char *p = buf;
    for (;;) {
        if (n == max_items) return eid_error("%s: at most %d items", what, max_items), -1;
        items[n++] = p;
        char *q = strchr(p, sep);
        if (!q) break;
        *q = 0;
        p = q + 1;
    }
    return n;
}

int strict_int_list(const char *s, int lo, int hi, int max_n, int **out, int *n, const char *what) {
    char b[48];
    if (!*s) return eid_error("%s: expected a comma list of integers in [%d, %d], got an empty list", what, lo, hi), -1;
    int cap = 16, k = 0;
    int *v = eid_xmalloc(sizeof(int) * cap);
    const char *p = s;
    for (int item = 1;; item++) {
        const char *q = strchr(p, ',');
        size_t len = q ? (size_t)(q - p) : strlen(p);
        char tok[32];
        if (len == 0 || len >= sizeof tok) {
            free(v);
            if (len == 0)
                return eid_error("%s: item %d of '%s' is empty (expected a comma list of integers in [%d, %d], no "
                                 "spaces, no leading or trailing comma)", what, item, shown(s, b, sizeof b), lo, hi), -1;
            return eid_error("%s: item %d of '%s' is not an integer in [%d, %d]", what, item, shown(s, b, sizeof b), lo,
                             hi), -1;
        }
        memcpy(tok, p, len), tok[len] = 0;
        long x;
        if (k == max_n) {
            free(v);
            return eid_error("%s: more than %d items", what, max_n), -1;
        }
        if (strict_long(tok, lo, hi, &x, what) != 0) {
            char msg[300];
            snprintf(msg, sizeof msg, "%s", eid_last_error());
            free(v);
            return eid_error("%s (item %d of the comma list)", msg, item), -1;
        }
        if (k == cap) v = eid_xrealloc(v, sizeof(int) * (size_t)(cap *= 2));
        v[k++] = (int)x;
        if (!q) break;
        p = q + 1;
    }
    *out = v, *n = k;
    return 0;
}

static int json_number(const cJSON *v, double *d, const char *what) {
    if (!cJSON_IsNumber(v)) return eid_error("%s: expected a number", what), -1;
    if (!isfinite(v->valuedouble)) return eid_error("%s: expected a number (finite), got %g", what, v->valuedouble), -1;
    *d = v->valuedouble;
    return 0;
}

int strict_json_long(const void *json, long lo, long hi, long *out, const char *what) {
    double d;
    if (json_number(json, &d, what) != 0) return -1;
    if (d != floor(d)) return eid_error("%s: expected an integer in [%ld, %ld], got %.17g", what, lo, hi, d), -1;
    /* compare in double before the cast: (long)d is undefined when d is outside long's range */
    if (!(d >= (double)lo && d <= (double)hi) || d >= 9.2e18 || d <= -9.2e18)
        return eid_error("%s: %.17g is out of range (expected an integer in [%ld, %ld])", what, d, lo, hi), -1;
    long v = (long)d;
    if (v < lo || v > hi) return eid_error("%s: %.17g is out of range (expected an integer in [%ld, %ld])", what, d, lo, hi), -1;
    *out = v;
    return 0;
}

int strict_json_int(const void *json, int lo, int hi, int *out, const char *what) {
    long v;
    if (strict_json_long(json, lo, hi, &v, what) != 0) return -1;
    *out = (int)v;
    return 0;
}

int strict_json_double(const void *json, double lo, double hi, double *out, const char *what) {
    double d;
    if (json_number(json, &d, what) != 0) return -1;
    if (d < lo || d > hi) return eid_error("%s: %g is out of range (expected a number in [%g, %g])", what, d, lo, hi), -1;
    *out = d;
    return 0;
}
