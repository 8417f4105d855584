/* tokenizer.c — the tokenizer interface (tokenizer.h): dispatch, the descriptor file, the byte
 * tokenizer, UTF-8 helpers and streaming decode. docs/lm.md "Tokenizers". */
#include "text/tok_impl.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "core/common.h"
#include "io/files.h"

#define DESCRIPTOR "eidetic_tokenizer.json"

uint64_t tok_fnv1a(uint64_t h, const void *data, size_t n) {
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* ---- the byte tokenizer ------------------------------------------------------------------- */

static int byte_encode(const Tokenizer *t, const char *text, size_t n, int **ids, size_t *cap, size_t *len) {
    if (*len + n > *cap) {
        size_t c = *cap ? *cap : 1024;
        while (c < *len + n) c *= 2;
        *ids = eid_xrealloc(*ids, c * sizeof **ids);
        *cap = c;
    }
    for (size_t i = 0; i < n; i++) (*ids)[(*len)++] = (unsigned char)text[i];
    return 0;
}

static int byte_piece(const Tokenizer *t, int id, int at_start, char *buf, int cap) {
    if (id < 256) {
        if (cap < 1) return -1;
        buf[0] = (char)id;
        return 1;
    }
    int n = (int)strlen(TOK_BYTE_EOS_NAME);
    if (cap < n) return -1;
    memcpy(buf, TOK_BYTE_EOS_NAME, (size_t)n);
    return n;
}

static int byte_is_special(const Tokenizer *t, int id) { return id >= 256; }

static int byte_save(const Tokenizer *t, const char *dir, const char **file) {
    *file = "";
    return 0;
}

static const TokOps byte_ops = {"byte", byte_encode, byte_piece, byte_is_special, byte_save, NULL};

Tokenizer *tok_new_byte(void) {
    Tokenizer *t = eid_xcalloc(1, sizeof *t);
    t->ops = &byte_ops;
    t->vocab = 257;
    t->eos = 256;
    t->bos = -1;
    t->hash = tok_fnv1a(tok_fnv1a(TOK_FNV_SEED, "byte", 4), TOK_BYTE_EOS_NAME, strlen(TOK_BYTE_EOS_NAME));
    return t;
}

/* ---- loading and saving ------------------------------------------------------------------- */

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

Tokenizer *tok_load_file(const char *path) {
    if (ends_with(path, ".json")) return tok_bpe_load(path);
    if (ends_with(path, ".model")) return tok_spm_load(path);
    eid_error("%s: not a tokenizer file (expected a Hugging Face tokenizer.json or a SentencePiece .model)", path);
    return NULL;
}

static char *read_small(const char *path, size_t max) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = eid_xmalloc(max + 1);
    size_t n = fread(buf, 1, max + 1, f);
    fclose(f);
    if (n > max) {
        free(buf);
        eid_error("%s: larger than %zu bytes (expected a small JSON descriptor)", path, max);
        return NULL;
    }
    buf[n] = 0;
    return buf;
}

static Tokenizer *load_descriptor(const char *dir, const char *path) {
    char *text = read_small(path, 1 << 16);
    if (!text) {
        if (!eid_last_error()[0]) eid_error("%s: cannot read", path);
        return NULL;
    }
    cJSON *j = cJSON_Parse(text);
    free(text);
    if (!j || !cJSON_IsObject(j)) {
        cJSON_Delete(j);
        eid_error("%s: not a JSON object (expected {\"type\": \"byte\"|\"spm\"|\"hf-bpe\", ...})", path);
        return NULL;
    }
    Tokenizer *t = NULL;
    const char *type = NULL, *file = NULL;
    for (cJSON *it = j->child; it; it = it->next) {
        if (!strcmp(it->string, "type") && cJSON_IsString(it)) type = it->valuestring;
        else if (!strcmp(it->string, "file") && cJSON_IsString(it)) file = it->valuestring;
        else if (!strcmp(it->string, "hash") && cJSON_IsString(it)) continue;
        else if (!strcmp(it->string, "vocab_size") && cJSON_IsNumber(it)) continue;
        else {
            eid_error("%s: unknown or mistyped key \"%s\" (expected type, file, hash, vocab_size)", path, it->string);
            goto out;
        }
    }
    if (!type) {
        eid_error("%s: missing \"type\" (expected \"byte\", \"spm\" or \"hf-bpe\")", path);
        goto out;
    }
    if (!strcmp(type, "byte")) {
        t = tok_new_byte();
    } else if (!strcmp(type, "spm") || !strcmp(type, "hf-bpe")) {
        if (!file || !file[0] || strchr(file, '/')) {
            eid_error("%s: \"file\" must name a file beside it for type \"%s\"", path, type);
            goto out;
        }
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", dir, file);
        t = !strcmp(type, "spm") ? tok_spm_load(p) : tok_bpe_load(p);
    } else {
        eid_error("%s: unknown tokenizer type \"%s\" (expected \"byte\", \"spm\" or \"hf-bpe\")", path, type);
    }
    cJSON *h = cJSON_GetObjectItemCaseSensitive(j, "hash");
    if (t && cJSON_IsString(h)) {
        char hex[17];
        tok_hash_hex(t, hex);
        if (strcmp(hex, h->valuestring)) {
            eid_error("%s: the tokenizer's hash is %s, the descriptor says %s (the tokenizer file was changed)",
                      path, hex, h->valuestring);
            tok_free(t);
            t = NULL;
        }
    }
out:
    cJSON_Delete(j);
    return t;
}

Tokenizer *tok_load_dir(const char *dir, int *found) {
    char p[4096];
    *found = 1;
    snprintf(p, sizeof p, "%s/%s", dir, DESCRIPTOR);
    if (eid_file_exists(p)) return load_descriptor(dir, p);
    snprintf(p, sizeof p, "%s/tokenizer.json", dir);
    if (eid_file_exists(p)) return tok_bpe_load(p);
    snprintf(p, sizeof p, "%s/tokenizer.model", dir);
    if (eid_file_exists(p)) return tok_spm_load(p);
    *found = 0;
    return NULL;
}

int tok_save_dir(const Tokenizer *t, const char *dir) {
    const char *file = "";
    if (eid_mkdir_p(dir) || t->ops->save(t, dir, &file)) return -1;
    char hex[17];
    tok_hash_hex(t, hex);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "type", t->ops->kind);
    if (file[0]) cJSON_AddStringToObject(j, "file", file);
    cJSON_AddStringToObject(j, "hash", hex);
    cJSON_AddNumberToObject(j, "vocab_size", t->vocab);
    char *text = cJSON_Print(j);
    cJSON_Delete(j);
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", dir, DESCRIPTOR);
    size_t n = strlen(text);
    text = eid_xrealloc(text, n + 2);
    text[n] = '\n';
    text[n + 1] = 0;
    int rc = eid_write_text_atomic(p, text);
    free(text);
    return rc;
}

void tok_free(Tokenizer *t) {
    if (!t) return;
    if (t->ops->free_impl) t->ops->free_impl(t->impl);
    free(t);
}

/* ---- the interface ------------------------------------------------------------------------ */

const char *tok_kind(const Tokenizer *t) { return t->ops->kind; }
int tok_vocab_size(const Tokenizer *t) { return t->vocab; }
int tok_eos_id(const Tokenizer *t) { return t->eos; }
int tok_bos_id(const Tokenizer *t) { return t->bos; }
uint64_t tok_hash(const Tokenizer *t) { return t->hash; }
void tok_hash_hex(const Tokenizer *t, char out[17]) { snprintf(out, 17, "%016llx", (unsigned long long)t->hash); }

int tok_encode(const Tokenizer *t, const char *text, size_t n, int **ids, size_t *cap, size_t *len) {
    return t->ops->encode(t, text, n, ids, cap, len);
}

int tok_piece(const Tokenizer *t, int id, int at_start, char *buf, int cap) {
    if (id < 0 || id >= t->vocab) {
        eid_error("token id %d is outside the tokenizer's vocabulary [0, %d)", id, t->vocab);
        return -1;
    }
    int n = t->ops->piece(t, id, at_start, buf, cap);
    if (n < 0 && !eid_last_error()[0]) eid_error("token %d: its text does not fit %d bytes", id, cap);
    return n;
}

int tok_is_special(const Tokenizer *t, int id) {
    return id >= 0 && id < t->vocab && t->ops->is_special(t, id);
}

char *tok_decode(const Tokenizer *t, const int *ids, size_t n, size_t *len) {
    size_t cap = 256, k = 0;
    char *out = eid_xmalloc(cap);
    char buf[TOK_MAX_PIECE];
    for (size_t i = 0; i < n; i++) {
        int m = tok_piece(t, ids[i], i == 0, buf, sizeof buf);
        if (m < 0) {
            free(out);
            return NULL;
        }
        if (k + (size_t)m + 1 > cap) {
            while (k + (size_t)m + 1 > cap) cap *= 2;
            out = eid_xrealloc(out, cap);
        }
        memcpy(out + k, buf, (size_t)m);
        k += (size_t)m;
    }
    out[k] = 0;
    if (len) *len = k;
    return out;
}

/* ---- UTF-8 -------------------------------------------------------------------------------- */

/* Length of the UTF-8 sequence that starts with byte c (0 for a continuation or invalid byte). */
static int utf8_seq_len(unsigned char c) {
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) return 2;
    if (c >= 0xE0 && c <= 0xEF) return 3;
    if (c >= 0xF0 && c <= 0xF4) return 4;
    return 0;
}

size_t utf8_complete_prefix(const char *s, size_t n) {
    /* look back at most 3 bytes for the start of the last sequence */
    size_t i = n;
    for (int back = 0; back < 4 && i > 0; back++) {
        unsigned char c = (unsigned char)s[i - 1];
        if ((c & 0xC0) != 0x80) {
            int need = utf8_seq_len(c);
            size_t have = n - (i - 1);
            if (need > 1 && have < (size_t)need) return i - 1; /* incomplete */
            return n;
        }
        i--;
    }
    return n;
}

int utf8_valid(const char *s, size_t n) {
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        unsigned c = p[i];
        int k = utf8_seq_len((unsigned char)c);
        if (!k || i + (size_t)k > n) return 0;
        unsigned cp = k == 1 ? c : k == 2 ? c & 0x1F : k == 3 ? c & 0x0F : c & 0x07;
        for (int j = 1; j < k; j++) {
            if ((p[i + j] & 0xC0) != 0x80) return 0;
            cp = (cp << 6) | (p[i + j] & 0x3F);
        }
        if ((k == 3 && cp < 0x800) || (k == 4 && cp < 0x10000) || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += (size_t)k;
    }
    return 1;
}

int tok_stream_push(const Tokenizer *t, TokStream *s, int id, char *out, int cap) {
    char buf[TOK_MAX_PIECE + 8];
    memcpy(buf, s->pending, (size_t)s->npending);
    int m = tok_piece(t, id, !s->started, buf + s->npending, TOK_MAX_PIECE);
    if (m < 0) return -1;
    s->started = 1;
    size_t n = (size_t)s->npending + (size_t)m;
    size_t ok = utf8_complete_prefix(buf, n);
    if (n - ok > sizeof s->pending) ok = n; /* cannot be a character: pass it through */
    if ((int)ok > cap) {
        eid_error("tok_stream_push: output buffer of %d bytes is too small", cap);
        return -1;
    }
    memcpy(out, buf, ok);
    s->npending = (int)(n - ok);
    memcpy(s->pending, buf + ok, (size_t)s->npending);
    return (int)ok;
}

int tok_stream_flush(TokStream *s, char *out, int cap) {
    int n = s->npending < cap ? s->npending : cap;
    memcpy(out, s->pending, (size_t)n);
    s->npending = 0;
    return n;
}
