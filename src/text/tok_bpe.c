/* tok_bpe.c — Hugging Face tokenizer.json with a byte-level BPE model (GPT-2 / GPT-NeoX style, the
 * tokenizer of the published Mamba checkpoints). docs/lm.md "Tokenizers".
 *
 * What is understood (anything else is an error naming the file and the key):
 *   model          {"type": "BPE", vocab, merges ("a b" strings or [a, b] pairs), dropout null,
 *                   unk_token null, continuing_subword_prefix / end_of_word_suffix null or "",
 *                   fuse_unk, byte_fallback false, ignore_merges}
 *   added_tokens   special ones get their ids and are never parsed from text; non-special ones
 *                  (GPT-NeoX's whitespace runs) are split out of the text first, as Hugging Face does
 *   normalizer     null or NFC (ICU's normaliser)
 *   pre_tokenizer  ByteLevel (add_prefix_space, use_regex: the GPT-2 split), or a Sequence of a
 *                  Split with the GPT-2 pattern (Isolated) and ByteLevel with use_regex false
 *   decoder        ByteLevel;  post_processor null or ByteLevel (offsets only: no effect on ids)
 *
 * Encoding: text → (NFC) → added-token segments → GPT-2 pre-tokens ("words", Unicode classes from
 * ICU) → byte-level BPE per word: a heap of adjacent pairs by merge rank (lowest rank, then leftmost,
 * first), O(w log w) for a word of w bytes; the ids of each word are cached (shared by threads
 * behind a mutex), so a corpus's frequent words are merged once. */
#include "text/tok_impl.h"
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include <unicode/uchar.h>
#include <unicode/unorm2.h>
#include <unicode/ustring.h>
#include "core/common.h"
#include "io/files.h"

#define GPT2_PATTERN "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"
#define MAX_FILE (1u << 30)
#define MAX_ID (1 << 24)
#define CACHE_WORD_MAX 128 /* longer words are merged every time (rare) */

enum { C_SPACE, C_LETTER, C_NUMBER, C_OTHER };

typedef struct { /* word → ids cache: open addressing, cleared when full */
    uint64_t *hash;  /* 0 = empty */
    uint32_t *koff, *ioff;
    uint16_t *klen, *nids;
    size_t mask, used;
    char *keys;
    size_t nkeys, ckeys;
    int *ids;
    size_t nid, cid;
} WordCache;

typedef struct {
    char *file; /* the tokenizer.json bytes (saved as they are) */
    size_t file_len;
    int vocab;
    char *arena; /* raw bytes of every token */
    uint32_t *off;
    uint16_t *len;
    unsigned char *special, *has; /* per id */
    int *vtab;  /* raw bytes → id (open addressing, -1 empty) */
    size_t vmask;
    uint64_t *mkey; /* (left << 32 | right) + 1; 0 = empty */
    int *mrank, *mnew;
    size_t mmask;
    int byte_id[256];
    int *added; /* non-special added tokens, matched in text */
    int nadded;
    unsigned char added_first[256]; /* 1: some added token starts with this byte */
    int nfc, add_prefix_space, use_regex, ignore_merges;
    unsigned char ascii_class[128];
    pthread_mutex_t lock;
    WordCache cache;
} Bpe;

/* ---- GPT-2's byte ↔ unicode alphabet ------------------------------------------------------ */

/* Printable bytes stand for themselves; the others (controls, space, 127–160, 173) are shifted to
 * 256 + n in byte order, so every byte is a visible character in vocab.json. */
static void byte_alphabet(int byte_to_cp[256]) {
    int n = 0;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
        byte_to_cp[b] = printable ? b : 256 + n++;
    }
}

/* One code point from s[*i..n); invalid bytes come back as -1 and advance by one. */
static int next_cp(const unsigned char *s, size_t n, size_t *i) {
    unsigned c = s[*i];
    int k = c < 0x80 ? 1 : c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
    if (!k || *i + (size_t)k > n) {
        (*i)++;
        return c < 0x80 ? (int)c : -1;
    }
    unsigned cp = k == 1 ? c : k == 2 ? c & 0x1F : k == 3 ? c & 0x0F : c & 0x07;
    for (int j = 1; j < k; j++) {
        if ((s[*i + j] & 0xC0) != 0x80) {
            (*i)++;
            return -1;
        }
        cp = (cp << 6) | (s[*i + j] & 0x3F);
    }
    if ((k == 3 && cp < 0x800) || (k == 4 && cp < 0x10000) || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
        (*i)++;
        return -1;
    }
    *i += (size_t)k;
    return (int)cp;
}

/* A vocabulary string (UTF-8 of alphabet characters) → its raw bytes in out[0..TOK_MAX_PIECE); -1 if
 * a character is not in the alphabet or the token is longer. */
static int unmap_token(const char *s, const int cp_to_byte[324], char *out, size_t *outn) {
    size_t n = strlen(s), i = 0, k = 0;
    while (i < n) {
        int cp = next_cp((const unsigned char *)s, n, &i);
        if (cp < 0 || cp >= 324 || cp_to_byte[cp] < 0 || k == TOK_MAX_PIECE) return -1;
        out[k++] = (char)cp_to_byte[cp];
    }
    *outn = k;
    return 0;
}

/* ---- hash tables ---------------------------------------------------------------------------- */

static uint64_t mix64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    return x ^ (x >> 33);
}

static size_t pow2_above(size_t n) {
    size_t c = 16;
    while (c < 2 * n) c *= 2;
    return c;
}

static int vocab_find(const Bpe *b, const char *s, size_t n) {
    for (size_t h = tok_fnv1a(TOK_FNV_SEED, s, n) & b->vmask;; h = (h + 1) & b->vmask) {
        int id = b->vtab[h];
        if (id < 0) return -1;
        if (b->len[id] == n && !memcmp(b->arena + b->off[id], s, n)) return id;
    }
}

static void vocab_insert(Bpe *b, int id) {
    size_t h = tok_fnv1a(TOK_FNV_SEED, b->arena + b->off[id], b->len[id]) & b->vmask;
    while (b->vtab[h] >= 0) h = (h + 1) & b->vmask;
    b->vtab[h] = id;
}

static size_t merge_slot(const Bpe *b, uint64_t key) {
    size_t h = mix64(key) & b->mmask;
    while (b->mkey[h] && b->mkey[h] != key) h = (h + 1) & b->mmask;
    return h;
}

/* rank of merging (left, right), -1 if no such merge; *merged gets the new id */
static int merge_rank(const Bpe *b, int left, int right, int *merged) {
    size_t h = merge_slot(b, (((uint64_t)(uint32_t)left << 32) | (uint32_t)right) + 1);
    if (!b->mkey[h]) return -1;
    *merged = b->mnew[h];
    return b->mrank[h];
}

/* ---- the word cache ------------------------------------------------------------------------- */

static void cache_free(WordCache *c) {
    free(c->hash), free(c->koff), free(c->ioff), free(c->klen), free(c->nids), free(c->keys), free(c->ids);
    memset(c, 0, sizeof *c);
}

static void cache_reset(WordCache *c, size_t slots) {
    cache_free(c);
    c->mask = slots - 1;
    c->hash = eid_xcalloc(slots, sizeof *c->hash);
    c->koff = eid_xmalloc(slots * sizeof *c->koff);
    c->ioff = eid_xmalloc(slots * sizeof *c->ioff);
    c->klen = eid_xmalloc(slots * sizeof *c->klen);
    c->nids = eid_xmalloc(slots * sizeof *c->nids);
}

static size_t cache_slot(const WordCache *c, uint64_t h, const char *w, size_t n) {
    size_t i = h & c->mask;
    while (c->hash[i] && !(c->hash[i] == h && c->klen[i] == n && !memcmp(c->keys + c->koff[i], w, n)))
        i = (i + 1) & c->mask;
    return i;
}

/* copies the cached ids of w into out; returns their count or -1 */
static int cache_get(Bpe *b, uint64_t h, const char *w, size_t n, int *out) {
    int k = -1;
    pthread_mutex_lock(&b->lock);
    if (b->cache.hash) {
        size_t i = cache_slot(&b->cache, h, w, n);
        if (b->cache.hash[i]) {
            k = b->cache.nids[i];
            memcpy(out, b->cache.ids + b->cache.ioff[i], (size_t)k * sizeof *out);
        }
    }
    pthread_mutex_unlock(&b->lock);
    return k;
}

static void cache_put(Bpe *b, uint64_t h, const char *w, size_t n, const int *ids, int k) {
    WordCache *c = &b->cache;
    pthread_mutex_lock(&b->lock);
    /* full (half the slots, or 64 MiB of keys/ids): start over, so memory stays bounded */
    if (!c->hash || c->used * 2 >= c->mask || c->nkeys + n > (64u << 20) || c->nid + (size_t)k > (16u << 20))
        cache_reset(c, 1u << 19);
    size_t i = cache_slot(c, h, w, n);
    if (!c->hash[i]) {
        if (c->nkeys + n > c->ckeys) {
            c->ckeys = (c->nkeys + n) * 2;
            c->keys = eid_xrealloc(c->keys, c->ckeys);
        }
        if (c->nid + (size_t)k > c->cid) {
            c->cid = (c->nid + (size_t)k) * 2;
            c->ids = eid_xrealloc(c->ids, c->cid * sizeof *c->ids);
        }
        memcpy(c->keys + c->nkeys, w, n);
        memcpy(c->ids + c->nid, ids, (size_t)k * sizeof *ids);
        c->hash[i] = h;
        c->koff[i] = (uint32_t)c->nkeys;
        c->klen[i] = (uint16_t)n;
        c->ioff[i] = (uint32_t)c->nid;
        c->nids[i] = (uint16_t)k;
        c->nkeys += n;
        c->nid += (size_t)k;
        c->used++;
    }
    pthread_mutex_unlock(&b->lock);
}

/* ---- BPE on one word ------------------------------------------------------------------------ */

typedef struct {
    int rank, left, right;
} Cand;

static int cand_less(const Cand *a, const Cand *b) {
    return a->rank < b->rank || (a->rank == b->rank && a->left < b->left);
}

static void heap_push(Cand *h, int *n, Cand c) {
    int i = (*n)++;
    while (i > 0 && cand_less(&c, &h[(i - 1) / 2])) {
        h[i] = h[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h[i] = c;
}

static Cand heap_pop(Cand *h, int *n) {
    Cand top = h[0], last = h[--(*n)];
    int i = 0;
    for (;;) {
        int c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && cand_less(&h[c + 1], &h[c])) c++;
        if (!cand_less(&h[c], &last)) break;
        h[i] = h[c];
        i = c;
    }
    h[i] = last;
    return top;
}

/* Symbols sym[0..n) in a linked list (nxt/prv, -1 at the ends); merges the lowest-rank adjacent
 * pair (leftmost among equals) until none is left. Writes the ids to out; returns their count. */
static int bpe_merge(const Bpe *b, int *sym, int *nxt, int *prv, Cand *heap, int n, int *out) {
    int nh = 0, merged;
    for (int i = 0; i + 1 < n; i++) {
        int r = merge_rank(b, sym[i], sym[i + 1], &merged);
        if (r >= 0) heap_push(heap, &nh, (Cand){r, i, i + 1});
    }
    while (nh > 0) {
        Cand c = heap_pop(heap, &nh);
        /* stale: one side was merged away or changed since this pair was queued */
        if (sym[c.left] < 0 || nxt[c.left] != c.right || sym[c.right] < 0) continue;
        if (merge_rank(b, sym[c.left], sym[c.right], &merged) != c.rank) continue;
        sym[c.left] = merged;
        sym[c.right] = -1;
        nxt[c.left] = nxt[c.right];
        if (nxt[c.right] >= 0) prv[nxt[c.right]] = c.left;
        int p = prv[c.left], q = nxt[c.left], r;
        if (p >= 0 && (r = merge_rank(b, sym[p], sym[c.left], &merged)) >= 0) heap_push(heap, &nh, (Cand){r, p, c.left});
        if (q >= 0 && (r = merge_rank(b, sym[c.left], sym[q], &merged)) >= 0) heap_push(heap, &nh, (Cand){r, c.left, q});
    }
    int k = 0;
    for (int i = 0; i >= 0; i = nxt[i]) out[k++] = sym[i];
    return k;
}

typedef struct { /* per-call scratch for words */
    int *sym, *nxt, *prv, *out;
    Cand *heap;
    size_t cap;
} Scratch;

static void scratch_fit(Scratch *s, size_t n) {
    if (n <= s->cap) return;
    s->cap = n * 2;
    s->sym = eid_xrealloc(s->sym, s->cap * sizeof *s->sym);
    s->nxt = eid_xrealloc(s->nxt, s->cap * sizeof *s->nxt);
    s->prv = eid_xrealloc(s->prv, s->cap * sizeof *s->prv);
    s->out = eid_xrealloc(s->out, s->cap * sizeof *s->out);
    s->heap = eid_xrealloc(s->heap, s->cap * 3 * sizeof *s->heap); /* n − 1 pairs + 2 per merge */
}

static void push_ids(int **ids, size_t *cap, size_t *len, const int *src, size_t k) {
    if (*len + k > *cap) {
        size_t c = *cap ? *cap : 1024;
        while (c < *len + k) c *= 2;
        *ids = eid_xrealloc(*ids, c * sizeof **ids);
        *cap = c;
    }
    memcpy(*ids + *len, src, k * sizeof *src);
    *len += k;
}

static void encode_word(Bpe *b, Scratch *s, const char *w, size_t n, int **ids, size_t *cap, size_t *len) {
    if (n == 1) {
        push_ids(ids, cap, len, &b->byte_id[(unsigned char)w[0]], 1);
        return;
    }
    if (b->ignore_merges) {
        int id = vocab_find(b, w, n);
        if (id >= 0 && !b->special[id]) {
            push_ids(ids, cap, len, &id, 1);
            return;
        }
    }
    scratch_fit(s, n);
    uint64_t h = 0;
    if (n <= CACHE_WORD_MAX) {
        h = tok_fnv1a(TOK_FNV_SEED, w, n) | 1;
        int k = cache_get(b, h, w, n, s->out);
        if (k >= 0) {
            push_ids(ids, cap, len, s->out, (size_t)k);
            return;
        }
    }
    for (size_t i = 0; i < n; i++) {
        s->sym[i] = b->byte_id[(unsigned char)w[i]];
        s->nxt[i] = i + 1 < n ? (int)i + 1 : -1;
        s->prv[i] = (int)i - 1;
    }
    int k = bpe_merge(b, s->sym, s->nxt, s->prv, s->heap, (int)n, s->out);
    if (n <= CACHE_WORD_MAX) cache_put(b, h, w, n, s->out, k);
    push_ids(ids, cap, len, s->out, (size_t)k);
}

/* ---- pre-tokenisation: the GPT-2 split ------------------------------------------------------ */

static int cp_class(const Bpe *b, int cp) {
    if (cp >= 0 && cp < 128) return b->ascii_class[cp];
    if (cp < 0) return C_OTHER; /* an invalid byte: punctuation-like, becomes byte tokens */
    if (u_isUWhiteSpace(cp)) return C_SPACE;
    if (u_isalpha(cp)) return C_LETTER; /* general category L */
    int t = u_charType(cp);
    if (t == U_DECIMAL_DIGIT_NUMBER || t == U_LETTER_NUMBER || t == U_OTHER_NUMBER) return C_NUMBER;
    return C_OTHER;
}

static size_t run_of(const Bpe *b, const unsigned char *s, size_t n, size_t i, int cls) {
    while (i < n) {
        size_t j = i;
        if (cp_class(b, next_cp(s, n, &j)) != cls) break;
        i = j;
    }
    return i;
}

/* End of the pre-token that starts at s[i]: the first alternative of
 * 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ that matches there. */
static size_t next_word(const Bpe *b, const unsigned char *s, size_t n, size_t i) {
    if (s[i] == '\'' && i + 1 < n) {
        unsigned char c = s[i + 1], d = i + 2 < n ? s[i + 2] : 0;
        if (c == 's' || c == 't' || c == 'm' || c == 'd') return i + 2;
        if ((c == 'r' && d == 'e') || (c == 'v' && d == 'e') || (c == 'l' && d == 'l')) return i + 3;
    }
    size_t j = i;
    int cls = cp_class(b, next_cp(s, n, &j));
    if (s[i] == ' ' && j < n) {
        size_t k = j;
        int next = cp_class(b, next_cp(s, n, &k));
        if (next != C_SPACE) return run_of(b, s, n, j, next);
    }
    if (cls != C_SPACE) return run_of(b, s, n, j, cls);
    /* whitespace: all of it at the end of the text; before a non-space, all but its last character
     * (\s+(?!\S)), which then starts the next pre-token (or stands alone: \s+) */
    size_t last = i, e = j;
    while (e < n) {
        size_t k = e;
        if (cp_class(b, next_cp(s, n, &k)) != C_SPACE) break;
        last = e;
        e = k;
    }
    if (e == n || last == i) return e;
    return last;
}

static void encode_segment(Bpe *b, Scratch *sc, const char *text, size_t n, int **ids, size_t *cap, size_t *len) {
    char *tmp = NULL;
    if (n == 0) return;
    if (b->add_prefix_space && text[0] != ' ') {
        tmp = eid_xmalloc(n + 1);
        tmp[0] = ' ';
        memcpy(tmp + 1, text, n);
        text = tmp;
        n++;
    }
    const unsigned char *s = (const unsigned char *)text;
    if (!b->use_regex) encode_word(b, sc, text, n, ids, cap, len);
    else
        for (size_t i = 0; i < n;) {
            size_t e = next_word(b, s, n, i);
            encode_word(b, sc, text + i, e - i, ids, cap, len);
            i = e;
        }
    free(tmp);
}

/* ---- NFC (ICU) ------------------------------------------------------------------------------ */

/* NFC of s[0..n) into a malloc'd buffer; invalid UTF-8 bytes are kept as they are (only the valid
 * stretches between them are normalised). NULL + eid_error if ICU fails. */
static char *nfc_text(const char *s, size_t n, size_t *outn) {
    UErrorCode err = U_ZERO_ERROR;
    const UNormalizer2 *norm = unorm2_getNFCInstance(&err);
    if (U_FAILURE(err)) {
        eid_error("NFC normaliser unavailable (ICU: %s)", u_errorName(err));
        return NULL;
    }
    size_t cap = n + 16, k = 0;
    char *out = eid_xmalloc(cap);
    UChar *u = NULL, *v = NULL;
    size_t ucap = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i, e = i; /* [i, e): the longest valid stretch */
        while (j < n && next_cp((const unsigned char *)s, n, &j) >= 0) e = j;
        int ascii = 1;
        if (e == i) e = i + 1; /* an invalid byte: copied as it is */
        else
            for (size_t q = i; q < e && ascii; q++) ascii = (unsigned char)s[q] < 0x80;
        size_t m = e - i;
        if (!ascii && m < (1u << 29)) {
            if (ucap < m + 1) {
                ucap = 2 * m + 1;
                u = eid_xrealloc(u, ucap * sizeof *u);
                v = eid_xrealloc(v, 3 * ucap * sizeof *v);
            }
            int32_t ulen = 0, vlen = 0, blen = 0;
            err = U_ZERO_ERROR;
            u_strFromUTF8(u, (int32_t)ucap, &ulen, s + i, (int32_t)m, &err);
            UBool done = U_SUCCESS(err) ? unorm2_isNormalized(norm, u, ulen, &err) : 0;
            if (U_SUCCESS(err) && !done) {
                vlen = unorm2_normalize(norm, u, ulen, v, (int32_t)(3 * ucap), &err);
                if (U_SUCCESS(err) && k + 4 * (size_t)vlen > cap) out = eid_xrealloc(out, cap = 2 * (k + 4 * (size_t)vlen));
                if (U_SUCCESS(err)) u_strToUTF8(out + k, (int32_t)(cap - k), &blen, v, vlen, &err);
            }
            if (U_FAILURE(err)) {
                free(out), free(u), free(v);
                eid_error("NFC normalisation failed (ICU: %s)", u_errorName(err));
                return NULL;
            }
            if (!done) {
                k += (size_t)blen;
                i = e;
                continue;
            }
        }
        if (k + m > cap) out = eid_xrealloc(out, cap = 2 * (k + m));
        memcpy(out + k, s + i, m);
        k += m;
        i = e;
    }
    free(u), free(v);
    *outn = k;
    return out;
}

/* ---- the TokOps ----------------------------------------------------------------------------- */

/* the longest non-special added token that starts at s[i], or -1 */
static int added_at(const Bpe *b, const char *s, size_t n, size_t i) {
    int best = -1;
    if (!b->added_first[(unsigned char)s[i]]) return -1;
    for (int a = 0; a < b->nadded; a++) {
        int id = b->added[a];
        size_t l = b->len[id];
        if (l && i + l <= n && (best < 0 || l > b->len[best]) && !memcmp(s + i, b->arena + b->off[id], l)) best = id;
    }
    return best;
}

static int bpe_encode(const Tokenizer *t, const char *text, size_t n, int **ids, size_t *cap, size_t *len) {
    Bpe *b = t->impl;
    char *norm = NULL;
    if (b->nfc) {
        int ascii = 1;
        for (size_t i = 0; i < n && ascii; i++) ascii = (unsigned char)text[i] < 0x80;
        if (!ascii) {
            if (!(norm = nfc_text(text, n, &n))) return -1;
            text = norm;
        }
    }
    Scratch sc = {0};
    size_t seg = 0;
    if (b->nadded)
        for (size_t i = 0; i < n;) {
            int id = added_at(b, text, n, i);
            if (id < 0) {
                i++;
                continue;
            }
            encode_segment(b, &sc, text + seg, i - seg, ids, cap, len);
            push_ids(ids, cap, len, &id, 1);
            i += b->len[id];
            seg = i;
        }
    encode_segment(b, &sc, text + seg, n - seg, ids, cap, len);
    free(sc.sym), free(sc.nxt), free(sc.prv), free(sc.out), free(sc.heap), free(norm);
    return 0;
}

static int bpe_piece(const Tokenizer *t, int id, int at_start, char *buf, int cap) {
    const Bpe *b = t->impl;
    int n = b->len[id];
    if (n > cap) return -1;
    memcpy(buf, b->arena + b->off[id], (size_t)n);
    return n;
}

static int bpe_is_special(const Tokenizer *t, int id) { return ((const Bpe *)t->impl)->special[id]; }

static int bpe_save(const Tokenizer *t, const char *dir, const char **file) {
    const Bpe *b = t->impl;
    char p[4096];
    snprintf(p, sizeof p, "%s/tokenizer.json", dir);
    *file = "tokenizer.json";
    return eid_write_atomic(p, b->file, b->file_len);
}

static void bpe_free(void *impl) {
    Bpe *b = impl;
    if (!b) return;
    free(b->file), free(b->arena), free(b->off), free(b->len), free(b->special), free(b->has);
    free(b->vtab), free(b->mkey), free(b->mrank), free(b->mnew), free(b->added);
    cache_free(&b->cache);
    pthread_mutex_destroy(&b->lock);
    free(b);
}

static const TokOps bpe_ops = {"hf-bpe", bpe_encode, bpe_piece, bpe_is_special, bpe_save, bpe_free};

/* ---- loading -------------------------------------------------------------------------------- */

/* Every key of obj must be in the NULL-terminated list `allowed`; else an error naming it. */
static int only_keys(const char *path, const char *where, const cJSON *obj, const char *const *allowed) {
    for (const cJSON *it = obj->child; it; it = it->next) {
        int ok = 0;
        for (int i = 0; allowed[i] && !ok; i++) ok = !strcmp(it->string, allowed[i]);
        if (!ok) {
            char list[512] = "";
            for (int i = 0; allowed[i]; i++)
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", allowed[i]);
            eid_error("%s: unknown key \"%s%s\" (expected %s)", path, where, it->string, list);
            return -1;
        }
    }
    return 0;
}

/* a boolean key (absent: dflt); -1 + error when present and not a boolean */
static int get_bool(const char *path, const char *where, const cJSON *obj, const char *key, int dflt) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v) return dflt;
    if (!cJSON_IsBool(v)) {
        eid_error("%s: \"%s%s\" must be true or false", path, where, key);
        return -1;
    }
    return cJSON_IsTrue(v);
}

static const char *type_of(const char *path, const char *where, const cJSON *obj) {
    const cJSON *ty = cJSON_GetObjectItemCaseSensitive(obj, "type");
    if (!cJSON_IsObject(obj) || !cJSON_IsString(ty)) {
        eid_error("%s: \"%s\" must be an object with a string \"type\"", path, where);
        return NULL;
    }
    return ty->valuestring;
}

static const char *const bytelevel_keys[] = {"type", "add_prefix_space", "trim_offsets", "use_regex", NULL};

/* a ByteLevel object (pre_tokenizer, decoder or post_processor); fills the flags when asked */
static int parse_bytelevel(const char *path, const char *where, const cJSON *o, int *prefix, int *regex) {
    char w[64];
    snprintf(w, sizeof w, "%s.", where);
    const char *ty = type_of(path, where, o);
    if (!ty) return -1;
    if (strcmp(ty, "ByteLevel")) {
        eid_error("%s: \"%s.type\" is \"%s\" (expected \"ByteLevel\": only byte-level BPE is supported)", path, where, ty);
        return -1;
    }
    if (only_keys(path, w, o, bytelevel_keys)) return -1;
    int p = get_bool(path, w, o, "add_prefix_space", 0), r = get_bool(path, w, o, "use_regex", 1);
    if (p < 0 || r < 0 || get_bool(path, w, o, "trim_offsets", 1) < 0) return -1;
    if (prefix) *prefix = p;
    if (regex) *regex = r;
    return 0;
}

/* ByteLevel, or Sequence [Split(GPT-2 pattern, Isolated), ByteLevel(use_regex false)] */
static int parse_pretokenizer(const char *path, const cJSON *o, Bpe *b) {
    const char *ty = type_of(path, "pre_tokenizer", o);
    if (!ty) return -1;
    if (strcmp(ty, "Sequence")) return parse_bytelevel(path, "pre_tokenizer", o, &b->add_prefix_space, &b->use_regex);
    static const char *const seq_keys[] = {"type", "pretokenizers", NULL};
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(o, "pretokenizers");
    if (only_keys(path, "pre_tokenizer.", o, seq_keys)) return -1;
    int n = cJSON_IsArray(list) ? cJSON_GetArraySize(list) : 0, split = 0;
    if (n < 1 || n > 2) {
        eid_error("%s: \"pre_tokenizer.pretokenizers\" must list a Split with the GPT-2 pattern and a ByteLevel", path);
        return -1;
    }
    if (n == 2) {
        static const char *const split_keys[] = {"type", "pattern", "behavior", "invert", NULL};
        const cJSON *s = cJSON_GetArrayItem(list, 0);
        const char *sty = type_of(path, "pre_tokenizer.pretokenizers[0]", s);
        if (!sty) return -1;
        const cJSON *pat = cJSON_GetObjectItemCaseSensitive(s, "pattern");
        const cJSON *re = cJSON_GetObjectItemCaseSensitive(pat, "Regex");
        const cJSON *beh = cJSON_GetObjectItemCaseSensitive(s, "behavior");
        if (strcmp(sty, "Split") || only_keys(path, "pre_tokenizer.pretokenizers[0].", s, split_keys)) {
            if (!strcmp(sty, "Split")) return -1;
            eid_error("%s: \"pre_tokenizer.pretokenizers[0].type\" is \"%s\" (expected \"Split\")", path, sty);
            return -1;
        }
        if (!cJSON_IsString(re) || strcmp(re->valuestring, GPT2_PATTERN) || cJSON_GetArraySize(pat) != 1) {
            eid_error("%s: \"pre_tokenizer.pretokenizers[0].pattern\" is not the GPT-2 pattern {\"Regex\": \"%s\"} "
                      "(other split patterns are not supported)", path, GPT2_PATTERN);
            return -1;
        }
        if (!cJSON_IsString(beh) || strcmp(beh->valuestring, "Isolated") ||
            get_bool(path, "pre_tokenizer.pretokenizers[0].", s, "invert", 0) != 0) {
            eid_error("%s: \"pre_tokenizer.pretokenizers[0]\" must have \"behavior\": \"Isolated\" and \"invert\": false", path);
            return -1;
        }
        split = 1;
    }
    int regex;
    char where[64];
    snprintf(where, sizeof where, "pre_tokenizer.pretokenizers[%d]", n - 1);
    if (parse_bytelevel(path, where, cJSON_GetArrayItem(list, n - 1), &b->add_prefix_space, &regex)) return -1;
    if (split && regex) {
        eid_error("%s: \"%s.use_regex\" must be false after a Split (the text would be split twice)", path, where);
        return -1;
    }
    b->use_regex = split || regex;
    return 0;
}

static int parse_normalizer(const char *path, const cJSON *o, Bpe *b) {
    if (!o || cJSON_IsNull(o)) return 0;
    const char *ty = type_of(path, "normalizer", o);
    if (!ty) return -1;
    static const char *const keys[] = {"type", NULL};
    if (strcmp(ty, "NFC")) {
        eid_error("%s: \"normalizer.type\" is \"%s\" (expected null or \"NFC\")", path, ty);
        return -1;
    }
    if (only_keys(path, "normalizer.", o, keys)) return -1;
    b->nfc = 1;
    return 0;
}

/* a model key that must be null (or, where allowed, the given value) */
static int null_or(const char *path, const cJSON *model, const char *key, const char *empty_ok) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(model, key);
    if (!v || cJSON_IsNull(v)) return 0;
    if (empty_ok && cJSON_IsString(v) && !strcmp(v->valuestring, empty_ok)) return 0;
    if (!strcmp(key, "dropout") && cJSON_IsNumber(v) && v->valuedouble == 0) return 0;
    eid_error("%s: \"model.%s\" is set (expected null: it is not supported)", path, key);
    return -1;
}

/* Sets a token's raw bytes (arena grows). */
static void set_token(Bpe *b, size_t *acap, size_t *alen, int id, const char *raw, size_t n) {
    if (!b->arena || *alen + n > *acap) { /* allocated even for an empty first token: no NULL + 0 */
        *acap = (*alen + n) * 2 + 1024;
        b->arena = eid_xrealloc(b->arena, *acap);
    }
    memcpy(b->arena + *alen, raw, n);
    b->off[id] = (uint32_t)*alen;
    b->len[id] = (uint16_t)n;
    b->has[id] = 1;
    *alen += n;
}

static int id_of(const char *path, const char *where, const cJSON *v) {
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble >= MAX_ID || v->valuedouble != (int)v->valuedouble) {
        eid_error("%s: \"%s\" must be a token id (an integer in [0, %d))", path, where, MAX_ID);
        return -1;
    }
    return (int)v->valuedouble;
}

static int parse_vocab_and_added(const char *path, const cJSON *vocab, const cJSON *added, Bpe *b) {
    int byte_to_cp[256], cp_to_byte[324];
    byte_alphabet(byte_to_cp);
    for (int i = 0; i < 324; i++) cp_to_byte[i] = -1;
    for (int i = 0; i < 256; i++) cp_to_byte[byte_to_cp[i]] = i;
    if (!cJSON_IsObject(vocab) || !vocab->child) {
        eid_error("%s: \"model.vocab\" must be a non-empty object {token: id}", path);
        return -1;
    }
    if (added && !cJSON_IsNull(added) && !cJSON_IsArray(added)) {
        eid_error("%s: \"added_tokens\" must be an array", path);
        return -1;
    }
    int maxid = -1;
    for (const cJSON *it = vocab->child; it; it = it->next) {
        int id = id_of(path, "model.vocab", it);
        if (id < 0) return -1;
        if (id > maxid) maxid = id;
    }
    for (const cJSON *it = added ? added->child : NULL; it; it = it->next) {
        int id = id_of(path, "added_tokens[].id", cJSON_GetObjectItemCaseSensitive(it, "id"));
        if (id < 0) return -1;
        if (id > maxid) maxid = id;
    }
    b->vocab = maxid + 1;
    size_t V = (size_t)b->vocab, acap = 0, alen = 0;
    b->off = eid_xcalloc(V, sizeof *b->off);
    b->len = eid_xcalloc(V, sizeof *b->len);
    b->special = eid_xcalloc(V, 1);
    b->has = eid_xcalloc(V, 1);
    char raw[TOK_MAX_PIECE];
    for (const cJSON *it = vocab->child; it; it = it->next) {
        int id = (int)it->valuedouble;
        size_t n;
        if (unmap_token(it->string, cp_to_byte, raw, &n)) {
            /* an added token may be in model.vocab as its plain text; it is set below */
            if (added && !cJSON_IsNull(added)) {
                int found = 0;
                for (const cJSON *a = added->child; a && !found; a = a->next) {
                    const cJSON *c = cJSON_GetObjectItemCaseSensitive(a, "content");
                    found = cJSON_IsString(c) && !strcmp(c->valuestring, it->string);
                }
                if (found) continue;
            }
            eid_error("%s: \"model.vocab\" token \"%.40s\" is not a byte-level token (characters outside GPT-2's byte "
                      "alphabet, or longer than %d bytes)", path, it->string, TOK_MAX_PIECE);
            return -1;
        }
        if (b->has[id]) {
            eid_error("%s: \"model.vocab\": id %d is given to two tokens", path, id);
            return -1;
        }
        set_token(b, &acap, &alen, id, raw, n);
    }
    static const char *const added_keys[] = {"id", "content", "single_word", "lstrip", "rstrip", "normalized", "special", NULL};
    b->added = eid_xmalloc(sizeof *b->added * (size_t)(added ? cJSON_GetArraySize(added) + 1 : 1));
    for (const cJSON *a = added ? added->child : NULL; a; a = a->next) {
        if (!cJSON_IsObject(a) || only_keys(path, "added_tokens[].", a, added_keys)) {
            if (!cJSON_IsObject(a)) eid_error("%s: \"added_tokens\" entries must be objects", path);
            return -1;
        }
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(a, "content");
        int id = (int)cJSON_GetObjectItemCaseSensitive(a, "id")->valuedouble;
        int special = get_bool(path, "added_tokens[].", a, "special", 0);
        int lstrip = get_bool(path, "added_tokens[].", a, "lstrip", 0), rstrip = get_bool(path, "added_tokens[].", a, "rstrip", 0);
        int single = get_bool(path, "added_tokens[].", a, "single_word", 0);
        if (special < 0 || lstrip < 0 || rstrip < 0 || single < 0 || get_bool(path, "added_tokens[].", a, "normalized", 1) < 0)
            return -1;
        if (!cJSON_IsString(c) || !c->valuestring[0] || strlen(c->valuestring) > TOK_MAX_PIECE) {
            eid_error("%s: \"added_tokens[].content\" of id %d must be a non-empty string of at most %d bytes", path, id,
                      TOK_MAX_PIECE);
            return -1;
        }
        if (!special && (lstrip || rstrip || single)) {
            eid_error("%s: \"added_tokens[]\" \"%.40s\" (id %d): lstrip, rstrip and single_word are not supported on "
                      "non-special added tokens", path, c->valuestring, id);
            return -1;
        }
        set_token(b, &acap, &alen, id, c->valuestring, strlen(c->valuestring));
        b->special[id] = (unsigned char)special;
        if (!special) {
            b->added[b->nadded++] = id;
            b->added_first[(unsigned char)c->valuestring[0]] = 1;
        }
    }
    for (int id = 0; id < b->vocab; id++)
        if (!b->has[id]) {
            eid_error("%s: token id %d has no token (ids of model.vocab and added_tokens must be 0..%d without gaps)",
                      path, id, b->vocab - 1);
            return -1;
        }
    b->vmask = pow2_above(V) - 1;
    b->vtab = eid_xmalloc((b->vmask + 1) * sizeof *b->vtab);
    for (size_t i = 0; i <= b->vmask; i++) b->vtab[i] = -1;
    for (int id = 0; id < b->vocab; id++)
        if (!b->special[id] && vocab_find(b, b->arena + b->off[id], b->len[id]) < 0) vocab_insert(b, id);
    for (int c = 0; c < 256; c++) {
        char ch = (char)c;
        if ((b->byte_id[c] = vocab_find(b, &ch, 1)) < 0) {
            eid_error("%s: \"model.vocab\" lacks the token of byte 0x%02x (a byte-level vocabulary has all 256)", path, c);
            return -1;
        }
    }
    return 0;
}

/* one merge's two sides (vocabulary strings) from "a b" or ["a", "b"] */
static int merge_sides(const char *path, int rank, const cJSON *m, const char **a, const char **bs, char *buf, size_t cap) {
    if (cJSON_IsString(m)) {
        const char *sp = strchr(m->valuestring, ' ');
        size_t n = strlen(m->valuestring);
        if (!sp || sp == m->valuestring || !sp[1] || strchr(sp + 1, ' ') || n >= cap) goto bad;
        memcpy(buf, m->valuestring, n + 1);
        buf[sp - m->valuestring] = 0;
        *a = buf;
        *bs = buf + (sp - m->valuestring) + 1;
        return 0;
    }
    if (cJSON_IsArray(m) && cJSON_GetArraySize(m) == 2 && cJSON_IsString(m->child) && cJSON_IsString(m->child->next)) {
        *a = m->child->valuestring;
        *bs = m->child->next->valuestring;
        return 0;
    }
bad:
    eid_error("%s: \"model.merges[%d]\" must be \"left right\" (one space) or [\"left\", \"right\"]", path, rank);
    return -1;
}

static int parse_merges(const char *path, const cJSON *merges, Bpe *b) {
    if (!cJSON_IsArray(merges)) {
        eid_error("%s: \"model.merges\" must be an array", path);
        return -1;
    }
    int n = cJSON_GetArraySize(merges), cp_to_byte[324], byte_to_cp[256];
    byte_alphabet(byte_to_cp);
    for (int i = 0; i < 324; i++) cp_to_byte[i] = -1;
    for (int i = 0; i < 256; i++) cp_to_byte[byte_to_cp[i]] = i;
    b->mmask = pow2_above((size_t)n) - 1;
    b->mkey = eid_xcalloc(b->mmask + 1, sizeof *b->mkey);
    b->mrank = eid_xmalloc((b->mmask + 1) * sizeof *b->mrank);
    b->mnew = eid_xmalloc((b->mmask + 1) * sizeof *b->mnew);
    char buf[8 * TOK_MAX_PIECE + 8], ra[2 * TOK_MAX_PIECE], rb[TOK_MAX_PIECE];
    int rank = 0;
    for (const cJSON *m = merges->child; m; m = m->next, rank++) {
        const char *sa, *sb;
        size_t na, nb;
        if (merge_sides(path, rank, m, &sa, &sb, buf, sizeof buf)) return -1;
        if (unmap_token(sa, cp_to_byte, ra, &na) || unmap_token(sb, cp_to_byte, rb, &nb)) {
            eid_error("%s: \"model.merges[%d]\" (\"%.40s\" \"%.40s\") is not made of byte-level tokens", path, rank, sa, sb);
            return -1;
        }
        int ia = vocab_find(b, ra, na), ib = vocab_find(b, rb, nb), im;
        memcpy(ra + na, rb, nb);
        im = na + nb <= TOK_MAX_PIECE ? vocab_find(b, ra, na + nb) : -1;
        if (ia < 0 || ib < 0 || im < 0) {
            eid_error("%s: \"model.merges[%d]\" (\"%.40s\" \"%.40s\"): %s is not in model.vocab", path, rank, sa, sb,
                      ia < 0 ? "the left side" : ib < 0 ? "the right side" : "the merged token");
            return -1;
        }
        /* a repeated pair: the later rank wins, as in Hugging Face's map of merges */
        size_t h = merge_slot(b, (((uint64_t)(uint32_t)ia << 32) | (uint32_t)ib) + 1);
        b->mkey[h] = (((uint64_t)(uint32_t)ia << 32) | (uint32_t)ib) + 1;
        b->mrank[h] = rank;
        b->mnew[h] = im;
    }
    return 0;
}

static int parse_model(const char *path, const cJSON *model, const cJSON *added, Bpe *b) {
    static const char *const keys[] = {"type", "dropout", "unk_token", "continuing_subword_prefix", "end_of_word_suffix",
                                       "fuse_unk", "byte_fallback", "ignore_merges", "vocab", "merges", NULL};
    const char *ty = type_of(path, "model", model);
    if (!ty) return -1;
    if (strcmp(ty, "BPE")) {
        eid_error("%s: \"model.type\" is \"%s\" (expected \"BPE\": only byte-level BPE tokenizer.json files are supported)",
                  path, ty);
        return -1;
    }
    if (only_keys(path, "model.", model, keys) || null_or(path, model, "dropout", NULL) ||
        null_or(path, model, "unk_token", NULL) || null_or(path, model, "continuing_subword_prefix", "") ||
        null_or(path, model, "end_of_word_suffix", "") || get_bool(path, "model.", model, "fuse_unk", 0) < 0)
        return -1;
    int fallback = get_bool(path, "model.", model, "byte_fallback", 0);
    if (fallback < 0 || (b->ignore_merges = get_bool(path, "model.", model, "ignore_merges", 0)) < 0) return -1;
    if (fallback) {
        eid_error("%s: \"model.byte_fallback\" is true (expected false: a byte-level BPE needs no fallback)", path);
        return -1;
    }
    if (parse_vocab_and_added(path, cJSON_GetObjectItemCaseSensitive(model, "vocab"), added, b)) return -1;
    return parse_merges(path, cJSON_GetObjectItemCaseSensitive(model, "merges"), b);
}

static int parse_top(const char *path, const cJSON *j, Bpe *b) {
    static const char *const keys[] = {"version", "truncation", "padding", "added_tokens", "normalizer",
                                       "pre_tokenizer", "post_processor", "decoder", "model", NULL};
    if (!cJSON_IsObject(j)) {
        eid_error("%s: not a JSON object (expected a Hugging Face tokenizer.json)", path);
        return -1;
    }
    if (only_keys(path, "", j, keys)) return -1;
    const char *nullable[] = {"truncation", "padding"};
    for (int i = 0; i < 2; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, nullable[i]);
        if (v && !cJSON_IsNull(v)) {
            eid_error("%s: \"%s\" is set (expected null: eidetic never truncates or pads)", path, nullable[i]);
            return -1;
        }
    }
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(j, "model");
    const cJSON *pre = cJSON_GetObjectItemCaseSensitive(j, "pre_tokenizer");
    const cJSON *dec = cJSON_GetObjectItemCaseSensitive(j, "decoder");
    const cJSON *post = cJSON_GetObjectItemCaseSensitive(j, "post_processor");
    if (!model || !pre || !dec) {
        eid_error("%s: missing \"%s\"", path, !model ? "model" : !pre ? "pre_tokenizer" : "decoder");
        return -1;
    }
    if (parse_normalizer(path, cJSON_GetObjectItemCaseSensitive(j, "normalizer"), b) || parse_pretokenizer(path, pre, b) ||
        parse_bytelevel(path, "decoder", dec, NULL, NULL) ||
        (post && !cJSON_IsNull(post) && parse_bytelevel(path, "post_processor", post, NULL, NULL)))
        return -1;
    return parse_model(path, model, cJSON_GetObjectItemCaseSensitive(j, "added_tokens"), b);
}

static char *read_file(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        eid_error("%s: cannot open (expected a Hugging Face tokenizer.json)", path);
        return NULL;
    }
    size_t cap = 1 << 16, k = 0;
    char *buf = eid_xmalloc(cap + 1);
    for (size_t r; (r = fread(buf + k, 1, cap - k, f)) > 0;) {
        k += r;
        if (k == cap) {
            if (cap >= MAX_FILE) {
                fclose(f);
                free(buf);
                eid_error("%s: larger than %u bytes (not a tokenizer.json)", path, MAX_FILE);
                return NULL;
            }
            buf = eid_xrealloc(buf, (cap *= 2) + 1);
        }
    }
    int err = ferror(f);
    fclose(f);
    if (err) {
        free(buf);
        eid_error("%s: read error", path);
        return NULL;
    }
    buf[k] = 0;
    *n = k;
    return buf;
}

Tokenizer *tok_bpe_from_bytes(const char *path, char *file, size_t n) {
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(file, n, &end, 0);
    if (!j) {
        eid_error("%s: not valid JSON (error near byte %ld)", path, end ? (long)(end - file) : -1L);
        free(file);
        return NULL;
    }
    Bpe *b = eid_xcalloc(1, sizeof *b);
    pthread_mutex_init(&b->lock, NULL);
    b->file = file;
    b->file_len = n;
    for (int c = 0; c < 128; c++)
        b->ascii_class[c] = u_isUWhiteSpace(c) ? C_SPACE : u_isalpha(c) ? C_LETTER : u_isdigit(c) ? C_NUMBER : C_OTHER;
    int rc = parse_top(path, j, b);
    cJSON_Delete(j);
    if (rc) {
        bpe_free(b);
        return NULL;
    }
    Tokenizer *t = eid_xcalloc(1, sizeof *t);
    t->ops = &bpe_ops;
    t->impl = b;
    t->vocab = b->vocab;
    t->eos = vocab_find(b, TOK_BYTE_EOS_NAME, strlen(TOK_BYTE_EOS_NAME));
    for (int id = 0; id < b->vocab && t->eos < 0; id++)
        if (b->len[id] == strlen(TOK_BYTE_EOS_NAME) && !memcmp(b->arena + b->off[id], TOK_BYTE_EOS_NAME, b->len[id]))
            t->eos = id;
    t->bos = -1;
    t->hash = tok_fnv1a(tok_fnv1a(TOK_FNV_SEED, "hf-bpe", 6), file, n);
    return t;
}

int tok_bpe_lossless(const Tokenizer *t) {
    const Bpe *b = t->impl;
    return !b->nfc && !b->add_prefix_space;
}

Tokenizer *tok_bpe_load(const char *path) {
    size_t n;
    char *file = read_file(path, &n);
    return file ? tok_bpe_from_bytes(path, file, n) : NULL;
}
