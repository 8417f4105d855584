/* test_strict.c — strict inputs (docs/reliability.md "Strict inputs"): the one number parser, strict
 * comma lists, strict config.json and safetensors validation, and the cross-entropy kernel on
 * non-finite logits (it once ran off the row on a NaN maximum). */
#include <limits.h>
#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "io/strict.h"
#include "kernels/kernels.h"
#include "testutil.h"
#include <cjson/cJSON.h>

static int err_has(const char *needle) { return strstr(eid_last_error(), needle) != NULL; }

static void test_numbers(void) {
    int i = 7;
    long l;
    uint64_t u;
    double d;
    CHECK(strict_int("42", 0, 100, &i, "--x") == 0 && i == 42, "strict_int 42 -> %d", i);
    CHECK(strict_int("-3", -5, 5, &i, "--x") == 0 && i == -3, "strict_int -3 -> %d", i);
    const char *bad_int[] = {"", " 1", "1 ", "+1", "1x", "0x10", "1.0", "1e3", "--1", "-", "2147483648"};
    for (size_t k = 0; k < sizeof bad_int / sizeof *bad_int; k++) {
        i = 7;
        CHECK(strict_int(bad_int[k], INT_MIN, INT_MAX, &i, "--flag") != 0 && i == 7 && err_has("--flag"),
              "strict_int accepted '%s' (or error lacks the flag: %s)", bad_int[k], eid_last_error());
    }
    CHECK(strict_int("2147483648", INT_MIN, INT_MAX, &i, "--steps") != 0 && err_has("out of range"),
          "2147483648: message says out of range: %s", eid_last_error());
    CHECK(strict_long("99999999999999999999", LONG_MIN, LONG_MAX, &l, "--n") != 0, "long overflow accepted");
    CHECK(strict_int("101", 0, 100, &i, "--x") != 0 && err_has("[0, 100]"), "range shown: %s", eid_last_error());
    CHECK(strict_u64("18446744073709551615", &u, "--seed") == 0 && u == UINT64_MAX, "u64 max");
    CHECK(strict_u64("18446744073709551616", &u, "--seed") != 0, "u64 overflow accepted");
    CHECK(strict_u64("-1", &u, "--seed") != 0, "u64 negative accepted");
    CHECK(strict_double("1e-3", 0, 1, &d, "--lr") == 0 && d == 1e-3, "double 1e-3");
    CHECK(strict_double("-.5", -1, 1, &d, "--x") == 0 && d == -0.5, "double -.5");
    const char *bad_dbl[] = {"", "nan", "inf", "-inf", "1e999", " 1", "1 ", "0x1p3", "1e", "1.2.3", "e5", "."};
    for (size_t k = 0; k < sizeof bad_dbl / sizeof *bad_dbl; k++)
        CHECK(strict_double(bad_dbl[k], -1e300, 1e300, &d, "--lr") != 0 && err_has("--lr"), "strict_double accepted '%s'",
              bad_dbl[k]);
}

static void test_lists(void) {
    int *v = NULL, n = 0;
    CHECK(strict_int_list("3,1,4", 0, 10, 8, &v, &n, "--tokens") == 0 && n == 3 && v[0] == 3 && v[2] == 4, "list 3,1,4");
    free(v);
    const char *bad[] = {"", "1,2,", ",1", "1,,2", "1, 2 ,3", "1;2", "1,x", "2147483648", "1,-1", "1,2,3,4,5,6,7,8,9"};
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        v = NULL;
        CHECK(strict_int_list(bad[k], 0, INT_MAX, 8, &v, &n, "--tokens") != 0 && v == NULL && err_has("--tokens"),
              "list '%s' accepted (or message lacks the flag: %s)", bad[k], eid_last_error());
    }
    char buf[32], *it[4];
    CHECK(strict_split("a,,b", ',', buf, sizeof buf, it, 4, "--x") == 3 && !strcmp(it[1], ""), "split keeps empty items");
    CHECK(strict_split("a,b,c,d,e", ',', buf, sizeof buf, it, 4, "--x") < 0, "split: too many items accepted");
}

static void test_json(void) {
    int i;
    const char *bad[] = {"1e10", "1.5", "-1", "true", "\"3\"", "1e999"};
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        cJSON *j = cJSON_Parse(bad[k]);
        CHECK(strict_json_int(j, 0, 1 << 30, &i, "cfg: \"chunk\"") != 0 && err_has("\"chunk\""), "json int %s accepted",
              bad[k]);
        cJSON_Delete(j);
    }
    cJSON *j = cJSON_Parse("64");
    CHECK(strict_json_int(j, 0, 100, &i, "k") == 0 && i == 64, "json int 64");
    cJSON_Delete(j);
    /* config.json: unknown keys, out-of-range sizes; --lenient admits string metadata only */
    const char *base = "{\"vocab_size\": 16, \"d_model\": 8, \"layers\": [{\"mixer\": \"longhorn\"}]%s}";
    char txt[512];
    ModelCfg c;
    snprintf(txt, sizeof txt, base, "");
    CHECK(config_from_json(txt, "config.json", &c) == 0, "minimal config: %s", eid_last_error());
    snprintf(txt, sizeof txt, base, ", \"exact\": true");
    CHECK(config_from_json_ex(txt, "config.json", &c, 1) != 0 && err_has("\"exact\""), "unknown bool key accepted");
    snprintf(txt, sizeof txt, base, ", \"model_type\": \"x\", \"architectures\": [\"A\"]");
    CHECK(config_from_json(txt, "config.json", &c) != 0 && err_has("model_type"), "strict: metadata key accepted");
    CHECK(config_from_json_ex(txt, "config.json", &c, 1) == 0, "lenient: metadata keys refused: %s", eid_last_error());
    snprintf(txt, sizeof txt, base, ", \"mlp_hidden\": 64");
    CHECK(config_from_json_ex(txt, "config.json", &c, 1) != 0 && err_has("mlp_hidden"), "lenient admitted a number key");
    const char *lay = "{\"vocab_size\": 16, \"d_model\": 8, \"layers\": [{\"mixer\": \"longhorn\", %s}]}";
    const char *bad_layer[] = {"\"chunk\": 1e10", "\"chunk\": 2.5", "\"d_state\": -3", "\"foo\": 1", "\"rope_theta\": 1e999"};
    for (size_t k = 0; k < sizeof bad_layer / sizeof *bad_layer; k++) {
        snprintf(txt, sizeof txt, lay, bad_layer[k]);
        CHECK(config_from_json(txt, "config.json", &c) != 0 && err_has("layers[0]"), "layer field %s accepted: %s",
              bad_layer[k], eid_last_error());
    }
    snprintf(txt, sizeof txt, "{\"vocab_size\": 1e300, \"d_model\": 8, \"layers\": [{\"mixer\": \"longhorn\"}]}");
    CHECK(config_from_json(txt, "config.json", &c) != 0 && err_has("vocab_size"), "vocab 1e300 accepted");
}

/* a safetensors file in memory: header text + data bytes */
static int st_try(const char *hdr, size_t data_bytes) {
    size_t hl = strlen(hdr), n = 8 + hl + data_bytes;
    uint8_t *b = calloc(1, n);
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)((uint64_t)hl >> (8 * i));
    memcpy(b + 8, hdr, hl);
    StFile f;
    int rc = st_open_bytes(&f, "m.safetensors", b, n);
    if (rc == 0) st_close(&f);
    free(b);
    return rc;
}

static void test_safetensors(void) {
    CHECK(st_try("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8) == 0, "valid file: %s",
          eid_last_error());
    CHECK(st_try("{\"__metadata__\":{\"k\":\"v\"},\"a\":{\"dtype\":\"F32\",\"shape\":[0,5],\"data_offsets\":[0,0]}}", 0) == 0,
          "empty tensor: %s", eid_last_error());
    struct { const char *h; size_t n; const char *why; } bad[] = {
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, "overlaps"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "gap"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8, "after the last"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4, "bad shape"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[\"0\",4]}}", 4, "data_offsets"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,1e300]}}", 4, "data_offsets"},
        {"{\"a\":{\"dtype\":\"Q4\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "dtype"},
        {"{\"__metadata__\":{\"k\":3}}", 0, "__metadata__"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "twice"},
        {"{\"a\":[1]}", 0, "malformed"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++)
        CHECK(st_try(bad[k].h, bad[k].n) != 0 && err_has("m.safetensors") && err_has(bad[k].why),
              "bad safetensors %zu accepted or unclear (want '%s'): %s", k, bad[k].why, eid_last_error());
}

/* cross-entropy on rows with NaN / Inf (docs/reliability.md): bounded argmax, NaN loss reported */
static void test_xent(void) {
    enum { M = 4, V = 37 };
    real z[M * V], keep[M * V];
    int y[M] = {3, 5, 7, 36};
    uint8_t ok[M];
    for (int i = 0; i < M * V; i++) z[i] = (real)sin(0.37 * i);
    z[0 * V + 3] = 5;                    /* row 0: finite, argmax = label */
    z[1 * V + 0] = (real)NAN;            /* row 1: NaN first (the maximum reduction keeps it) */
    z[2 * V + 9] = (real)INFINITY;       /* row 2: +inf */
    for (int v = 0; v < V; v++) z[3 * V + v] = (real)NAN; /* row 3: all NaN */
    memcpy(keep, z, sizeof z);
    double loss = k_xent_fwd_bwd(z, y, M, V, 1, ok);
    CHECK(!isfinite(loss), "xent with NaN/inf rows: loss %g (want non-finite, reported by the caller)", loss);
    CHECK(ok[0] == 1 && ok[1] == 0 && ok[2] == 0 && ok[3] == 0, "xent correct flags %d %d %d %d", ok[0], ok[1], ok[2], ok[3]);
    /* a finite row against a naive reference: loss and gradient softmax − onehot */
    real r[V];
    memcpy(r, keep, sizeof r);
    double l0 = k_xent_fwd_bwd(r, y, 1, V, 1, ok), mx = -1e300, s = 0;
    for (int v = 0; v < V; v++) mx = t_worst(mx, (double)keep[v]);
    for (int v = 0; v < V; v++) s += exp((double)keep[v] - mx);
    double want = mx + log(s) - (double)keep[3], gerr = 0;
    for (int v = 0; v < V; v++) gerr = t_worst(gerr, fabs((double)r[v] - (exp((double)keep[v] - mx) / s - (v == 3))));
    CHECK(fabs(l0 - want) < 1e-12 && gerr < 1e-12, "xent finite row: loss %.15g want %.15g, grad err %g", l0, want, gerr);
}

int main(void) {
    test_numbers();
    test_lists();
    test_json();
    test_safetensors();
    test_xent();
    return t_summary("test_strict");
}
