/* strict.h — the one strict number parser every input goes through (CLI flags, token lists, comma
 * lists, config files, config.json, safetensors metadata); docs/reliability.md "Strict inputs".
 *
 * A number is accepted only when the whole string is one: optional '-', decimal digits (doubles:
 * also a fraction and an exponent), no spaces, no '+', no hex, no inf/nan; it must not overflow its
 * type and must lie in [lo, hi]. On failure the functions return -1 and set eid_error to
 * "WHAT: expected ..., got 'TEXT'", where WHAT names the flag, key or file ("--steps",
 * "config.json: \"chunk\""). JSON numbers are checked (finite, integral where an integer is
 * expected, in range) before any cast. */
#ifndef EIDETIC_STRICT_H
#define EIDETIC_STRICT_H
#include <stdint.h>
#include "core/common.h"

int strict_long(const char *s, long lo, long hi, long *out, const char *what);
int strict_int(const char *s, int lo, int hi, int *out, const char *what);
int strict_u64(const char *s, uint64_t *out, const char *what);
int strict_double(const char *s, double lo, double hi, double *out, const char *what); /* finite */

/* "a,b,c": every item strict_int in [lo, hi]; no empty item (so no leading, trailing or doubled
 * comma), no spaces; 1..max_n items. *out is malloc'd. */
int strict_int_list(const char *s, int lo, int hi, int max_n, int **out, int *n, const char *what);

/* Split s on `sep` into at most max_items pieces, keeping empty pieces (so "1,2," has 3 items, the
 * last empty). Pieces point into buf (a copy of s, size bufsize). Returns the count or -1 (too
 * many items, or s longer than buf) with eid_error naming WHAT. */
int strict_split(const char *s, char sep, char *buf, size_t bufsize, char **items, int max_items, const char *what);

/* A JSON value (a cJSON *) that must be a number: finite, integral for the int forms, in [lo, hi]. */
int strict_json_long(const void *json, long lo, long hi, long *out, const char *what);
int strict_json_int(const void *json, int lo, int hi, int *out, const char *what);
int strict_json_double(const void *json, double lo, double hi, double *out, const char *what);

#endif
