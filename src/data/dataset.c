/* dataset.c — `eidetic prepare`'s library half and the strict shard reader (data/dataset.h,
 * docs/lm.md "Datasets (`eidetic prepare`)").
 *
 * Two passes over every input, each in fixed-size buffers (zlib's gzread reads plain and .gz files
 * alike): the first checks that the file is UTF-8 text (a NUL byte or invalid UTF-8 skips the whole
 * file, counted and named on stderr and in the manifest) and hashes each document to choose its
 * split; the second tokenises the documents into the two shards. Memory stays bounded: one read
 * buffer, one text chunk, one split bit per document of the current file. */
#include "data/dataset.h"
#include <cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>
#include "core/common.h"
#include "io/files.h"

enum { READ_BUF = 1 << 20, CHUNK = 1 << 20 };

/* ---- input list ------------------------------------------------------------------------------ */

typedef struct {
    char **paths;
    int n, cap;
} PathList;

static void paths_add(PathList *l, const char *p) {
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 16;
        l->paths = eid_xrealloc(l->paths, (size_t)l->cap * sizeof *l->paths);
    }
    l->paths[l->n++] = strdup(p);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Files under path, depth first, each directory's names in byte order (the same on every machine). */
static int walk(const char *path, PathList *out) {
    struct stat st;
    if (stat(path, &st) != 0) return eid_error("%s: cannot read input (%s)", path, strerror(errno)), -1;
    if (S_ISREG(st.st_mode)) return paths_add(out, path), 0;
    if (!S_ISDIR(st.st_mode)) return eid_error("%s: not a file or directory", path), -1;
    DIR *d = opendir(path);
    if (!d) return eid_error("%s: cannot open directory (%s)", path, strerror(errno)), -1;
    PathList names = {0};
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') paths_add(&names, e->d_name); /* hidden files and . / .. are skipped */
    closedir(d);
    if (names.n) qsort(names.paths, (size_t)names.n, sizeof *names.paths, cmp_str);
    int rc = 0;
    for (int i = 0; i < names.n; i++) {
        if (rc == 0) {
            size_t len = strlen(path) + strlen(names.paths[i]) + 2;
            char *child = eid_xmalloc(len);
            snprintf(child, len, "%s/%s", path, names.paths[i]);
            rc = walk(child, out);
            free(child);
        }
        free(names.paths[i]);
    }
    free(names.paths);
    return rc;
}

static void paths_free(PathList *l) {
    for (int i = 0; i < l->n; i++) free(l->paths[i]);
    free(l->paths);
}

/* ---- document segmentation ------------------------------------------------------------------- */

#define FNV_OFFSET 1469598103934665603ull
#define FNV_PRIME 1099511628211ull
static uint64_t fnv1a(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * FNV_PRIME;
    return h;
}

/* Feeds a file's bytes and calls back with the text of its documents. DS_DOCS_FILE: the whole file
 * is one document, byte for byte. DS_DOCS_PARA: documents are separated by one or more blank lines
 * ("\n\n"); the newlines between documents and at their ends are not part of any document. */
typedef struct Seg Seg;
struct Seg {
    DsDocMode mode;
    int in_doc, pending_nl;
    char *chunk; /* [CHUNK] the current document's text not yet handed on */
    size_t len;
    int (*text)(Seg *s, const char *p, size_t n); /* part of the current document */
    int (*end)(Seg *s);                          /* the current document is complete */
    void *user;
};

static int seg_put(Seg *s, char c) {
    if (s->len == CHUNK) {
        /* hand on up to the last newline or space (so a subword tokenizer rarely sees a word cut),
         * never inside a UTF-8 character */
        size_t cut = CHUNK;
        while (cut > CHUNK / 2 && s->chunk[cut - 1] != '\n' && s->chunk[cut - 1] != ' ') cut--;
        if (cut == CHUNK / 2) cut = utf8_complete_prefix(s->chunk, CHUNK);
        if (cut == 0) cut = CHUNK;
        if (s->text(s, s->chunk, cut) != 0) return -1;
        memmove(s->chunk, s->chunk + cut, CHUNK - cut);
        s->len = CHUNK - cut;
    }
    s->chunk[s->len++] = c;
    return 0;
}

static int seg_end_doc(Seg *s) {
    if (!s->in_doc) return 0;
    if (s->len && s->text(s, s->chunk, s->len) != 0) return -1;
    s->len = 0;
    s->in_doc = 0;
    return s->end(s);
}

static int seg_feed(Seg *s, const char *p, size_t n) {
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (s->mode == DS_DOCS_PARA) {
            if (c == '\n') { s->pending_nl++; continue; }
            if (s->in_doc && s->pending_nl >= 2 && seg_end_doc(s) != 0) return -1;
            if (s->in_doc && s->pending_nl == 1 && seg_put(s, '\n') != 0) return -1;
            s->pending_nl = 0;
        }
        s->in_doc = 1;
        if (seg_put(s, c) != 0) return -1;
    }
    return 0;
}

static int seg_finish(Seg *s) { return seg_end_doc(s); }

/* Reads path through zlib into seg. -1 + eid_error naming the file. */
static int read_file_into(const char *path, Seg *seg, char *buf, void (*progress)(void *, uint64_t), void *pu) {
    gzFile f = gzopen(path, "rb");
    if (!f) return eid_error("%s: cannot open (%s)", path, strerror(errno ? errno : EIO)), -1;
    gzbuffer(f, 1 << 17);
    for (;;) {
        int got = gzread(f, buf, READ_BUF);
        if (got < 0) {
            int zerr;
            const char *msg = gzerror(f, &zerr);
            eid_error("%s: read failed (%s)", path, zerr == Z_ERRNO ? strerror(errno) : msg);
            gzclose(f);
            return -1;
        }
        if (got == 0) break;
        if (seg_feed(seg, buf, (size_t)got) != 0) return gzclose(f), -1;
        if (progress) progress(pu, (uint64_t)gzoffset(f));
    }
    gzclose(f);
    return seg_finish(seg);
}

/* ---- pass 1: is it UTF-8 text, and which split does each document go to ---------------------- */

typedef struct {
    int bad;             /* 1: NUL byte, 2: invalid UTF-8 */
    char carry[4];       /* an incomplete UTF-8 character at the end of the last block */
    int ncarry;
    uint64_t file_hash, doc_hash, seed;
    double val_fraction;
    uint8_t *to_val;     /* one split bit per document of this file */
    size_t ndocs, cap;
} Scan;

static int scan_check(Scan *sc, const char *p, size_t n) {
    if (sc->bad) return 0;
    if (memchr(p, 0, n)) return sc->bad = 1, 0;
    /* validate carry + p up to its last complete character; keep the tail */
    char tmp[8];
    size_t i = 0;
    if (sc->ncarry) { /* complete the carried character with the first bytes of p */
        size_t take = EID_MIN(n, (size_t)(4 - sc->ncarry));
        memcpy(tmp, sc->carry, (size_t)sc->ncarry);
        memcpy(tmp + sc->ncarry, p, take);
        size_t m = (size_t)sc->ncarry + take, done = utf8_complete_prefix(tmp, m);
        if (done <= (size_t)sc->ncarry) { /* still incomplete: n was tiny */
            memcpy(sc->carry, tmp, m);
            sc->ncarry = (int)m;
            return 0;
        }
        if (!utf8_valid(tmp, done)) return sc->bad = 2, 0;
        i = done - (size_t)sc->ncarry;
        sc->ncarry = 0;
    }
    size_t whole = utf8_complete_prefix(p + i, n - i);
    if (!utf8_valid(p + i, whole)) return sc->bad = 2, 0;
    sc->ncarry = (int)(n - i - whole);
    memcpy(sc->carry, p + i + whole, (size_t)sc->ncarry);
    return 0;
}

static int scan_text(Seg *s, const char *p, size_t n) {
    Scan *sc = s->user;
    sc->doc_hash = fnv1a(sc->doc_hash, p, n);
    return 0;
}

static int scan_end(Seg *s) {
    Scan *sc = s->user;
    /* the split depends on the document's bytes and the seed only: a splitmix of the FNV hash */
    uint64_t z = sc->doc_hash ^ (sc->seed * 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    double u = (double)(z >> 11) / 9007199254740992.0; /* [0, 1) */
    if (sc->ndocs == sc->cap) {
        sc->cap = sc->cap ? 2 * sc->cap : 64;
        sc->to_val = eid_xrealloc(sc->to_val, sc->cap);
    }
    sc->to_val[sc->ndocs++] = u < sc->val_fraction;
    sc->doc_hash = FNV_OFFSET;
    return 0;
}

/* ---- shard writer ------------------------------------------------------------------------------ */

typedef struct {
    char path[1200], idx_path[1200];
    FILE *f, *idx;
    uint32_t width;
    uint64_t docs, tokens, bytes;
} ShardW;

static int shard_open(ShardW *w, const char *dir, const char *name, uint32_t width) {
    memset(w, 0, sizeof *w);
    snprintf(w->path, sizeof w->path, "%s/%s", dir, name);
    snprintf(w->idx_path, sizeof w->idx_path, "%s/%s.idx", dir, name);
    w->width = width;
    w->f = fopen(w->path, "wb");
    w->idx = fopen(w->idx_path, "w+b");
    if (!w->f || !w->idx) return eid_error("%s: cannot create (%s)", w->path, strerror(errno)), -1;
    static const char zero[DS_HEADER_BYTES];
    uint64_t off0 = 0;
    if (fwrite(zero, 1, sizeof zero, w->f) != sizeof zero || fwrite(&off0, 8, 1, w->idx) != 1)
        return eid_error("%s: write failed (%s)", w->path, strerror(errno)), -1;
    return 0;
}

static int shard_tokens(ShardW *w, const int *ids, size_t n) {
    uint16_t b16[1024];
    uint32_t b32[1024];
    for (size_t i = 0; i < n; i += 1024) {
        size_t m = EID_MIN(n - i, (size_t)1024);
        size_t ok;
        if (w->width == 2) {
            for (size_t k = 0; k < m; k++) b16[k] = (uint16_t)ids[i + k];
            ok = fwrite(b16, 2, m, w->f);
        } else {
            for (size_t k = 0; k < m; k++) b32[k] = (uint32_t)ids[i + k];
            ok = fwrite(b32, 4, m, w->f);
        }
        if (ok != m) return eid_error("%s: write failed (%s)", w->path, strerror(errno)), -1;
    }
    w->tokens += n;
    return 0;
}

static int shard_end_doc(ShardW *w) {
    w->docs++;
    if (fwrite(&w->tokens, 8, 1, w->idx) != 1) return eid_error("%s: write failed (%s)", w->idx_path, strerror(errno)), -1;
    return 0;
}

static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); } /* little-endian hosts (x86-64, arm64) */
static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

/* Appends the index, writes the header, fsyncs, closes. */
static int shard_close(ShardW *w, uint32_t vocab, uint64_t hash) {
    int rc = 0;
    char buf[1 << 16];
    rewind(w->idx);
    size_t got;
    while (rc == 0 && (got = fread(buf, 1, sizeof buf, w->idx)) > 0)
        if (fwrite(buf, 1, got, w->f) != got) rc = -1;
    uint8_t h[DS_HEADER_BYTES] = {0};
    memcpy(h, DS_MAGIC, 8);
    put32(h + 8, DS_VERSION);
    put32(h + 12, vocab);
    put32(h + 16, w->width);
    put64(h + 24, hash);
    put64(h + 32, w->docs);
    put64(h + 40, w->tokens);
    put64(h + 48, w->bytes);
    if (rc == 0 && (fseek(w->f, 0, SEEK_SET) != 0 || fwrite(h, 1, sizeof h, w->f) != sizeof h)) rc = -1;
    if (rc == 0 && (fflush(w->f) != 0 || fsync(fileno(w->f)) != 0)) rc = -1;
    if (rc != 0) eid_error("%s: write failed (%s)", w->path, strerror(errno));
    if (fclose(w->f) != 0 && rc == 0) rc = -1, eid_error("%s: write failed (%s)", w->path, strerror(errno));
    fclose(w->idx);
    w->f = w->idx = NULL;
    remove(w->idx_path);
    return rc;
}

static void shard_abort(ShardW *w) {
    if (w->f) fclose(w->f);
    if (w->idx) fclose(w->idx);
    w->f = w->idx = NULL;
}

/* ---- pass 2: tokenise --------------------------------------------------------------------------- */

typedef struct {
    const Tokenizer *tok;
    ShardW *shard[2];
    const uint8_t *to_val;
    size_t doc;
    int *ids;
    size_t cap;
    const char *path;
} Emit;

static int emit_text(Seg *s, const char *p, size_t n) {
    Emit *e = s->user;
    ShardW *w = e->shard[e->to_val[e->doc]];
    size_t len = 0;
    if (tok_encode(e->tok, p, n, &e->ids, &e->cap, &len) != 0) return -1;
    w->bytes += n;
    return shard_tokens(w, e->ids, len);
}

static int emit_end(Seg *s) {
    Emit *e = s->user;
    return shard_end_doc(e->shard[e->to_val[e->doc++]]);
}

/* ---- progress --------------------------------------------------------------------------------- */

typedef struct {
    int on;
    uint64_t total, before;
    double t0, last;
} Progress;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void progress_show(void *u, uint64_t in_file) {
    Progress *p = u;
    if (!p->on) return;
    double t = now_s();
    uint64_t done = p->before + in_file;
    if (t - p->last < 0.25 && done < p->total) return;
    p->last = t;
    double frac = p->total ? (double)done / (double)p->total : 1.0, el = t - p->t0;
    double mbs = el > 0 ? (double)done / 1e6 / el : 0, eta = frac > 0 ? el * (1 - frac) / frac : 0;
    int bar = (int)(frac * 30);
    fprintf(stderr, "\rprepare [%.*s%*s] %5.1f%%  %.1f MB/s  ETA %.0fs ", bar, "##############################",
            30 - bar, "", 100 * frac, mbs, eta);
}

/* ---- prepare --------------------------------------------------------------------------------- */

static int write_manifest(const char *dir, const DsPrepareCfg *cfg, const Tokenizer *tok, uint32_t width,
                          cJSON *inputs, cJSON *skipped, const ShardW *w) {
    cJSON *m = cJSON_CreateObject();
    char hex[17];
    tok_hash_hex(tok, hex);
    cJSON_AddStringToObject(m, "format", "eidetic-dataset");
    cJSON_AddNumberToObject(m, "version", DS_VERSION);
    cJSON *t = cJSON_AddObjectToObject(m, "tokenizer");
    cJSON_AddStringToObject(t, "kind", tok_kind(tok));
    cJSON_AddNumberToObject(t, "vocab", tok_vocab_size(tok));
    cJSON_AddStringToObject(t, "hash", hex);
    cJSON_AddNumberToObject(m, "token_width", width);
    cJSON_AddStringToObject(m, "documents", cfg->docs == DS_DOCS_PARA ? "paragraph" : "file");
    cJSON_AddNumberToObject(m, "val_fraction", cfg->val_fraction);
    cJSON_AddNumberToObject(m, "seed", (double)cfg->seed);
    cJSON_AddItemToObject(m, "inputs", inputs);
    cJSON_AddItemToObject(m, "skipped", skipped);
    cJSON *sp = cJSON_AddObjectToObject(m, "splits");
    const char *names[2] = {"train", "val"};
    for (int k = 0; k < 2; k++) {
        cJSON *o = cJSON_AddObjectToObject(sp, names[k]);
        cJSON_AddStringToObject(o, "file", k ? "val.tok" : "train.tok");
        cJSON_AddNumberToObject(o, "documents", (double)w[k].docs);
        cJSON_AddNumberToObject(o, "tokens", (double)w[k].tokens);
        cJSON_AddNumberToObject(o, "utf8_bytes", (double)w[k].bytes);
    }
    char *text = cJSON_Print(m);
    cJSON_Delete(m);
    size_t len = strlen(text) + 2;
    char *full = eid_xmalloc(len), path[1200];
    snprintf(full, len, "%s\n", text);
    free(text);
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    int rc = eid_write_text_atomic(path, full);
    free(full);
    return rc;
}

static void hex64(uint64_t v, char out[17]) { snprintf(out, 17, "%016llx", (unsigned long long)v); }

/* Pass 1 over one file: 0 (sc filled; sc->bad says whether to skip), or -1 + eid_error. */
static int scan_file(const char *path, DsDocMode mode, Scan *sc, char *buf, char *chunk, uint64_t *size) {
    gzFile f = gzopen(path, "rb");
    if (!f) return eid_error("%s: cannot open (%s)", path, strerror(errno ? errno : EIO)), -1;
    Seg s = {.mode = mode, .chunk = chunk, .text = scan_text, .end = scan_end, .user = sc};
    uint64_t total = 0;
    for (;;) {
        int got = gzread(f, buf, READ_BUF);
        if (got < 0) {
            int zerr;
            const char *msg = gzerror(f, &zerr);
            eid_error("%s: read failed (%s)", path, zerr == Z_ERRNO ? strerror(errno) : msg);
            return gzclose(f), -1;
        }
        if (got == 0) break;
        total += (uint64_t)got;
        sc->file_hash = fnv1a(sc->file_hash, buf, (size_t)got);
        scan_check(sc, buf, (size_t)got);
        if (sc->bad) break;
        seg_feed(&s, buf, (size_t)got);
    }
    gzclose(f);
    if (!sc->bad && sc->ncarry) sc->bad = 2; /* ends inside a character */
    if (!sc->bad) seg_finish(&s);
    *size = total;
    return 0;
}

int ds_prepare(const DsPrepareCfg *cfg, const Tokenizer *tok, DsStats *st) {
    memset(st, 0, sizeof *st);
    if (!(cfg->val_fraction >= 0 && cfg->val_fraction < 1))
        return eid_error("--val-fraction: expected a number in [0, 1), got %g", cfg->val_fraction), -1;
    if (eid_file_exists(cfg->out) && !cfg->force)
        return eid_error("%s: already exists (use --force to replace it)", cfg->out), -1;
    PathList files = {0};
    for (int i = 0; i < cfg->n_inputs; i++)
        if (walk(cfg->inputs[i], &files) != 0) return paths_free(&files), -1;
    if (files.n == 0) return paths_free(&files), eid_error("no input files (an empty corpus)"), -1;

    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.tmp", cfg->out);
    if (eid_remove_tree(tmp) != 0 || eid_mkdir_p(tmp) != 0) return paths_free(&files), -1;

    uint32_t vocab = (uint32_t)tok_vocab_size(tok), width = vocab <= 65536 ? 2 : 4;
    char *buf = eid_xmalloc(READ_BUF), *chunk = eid_xmalloc(CHUNK);
    ShardW w[2];
    memset(w, 0, sizeof w);
    cJSON *inputs = cJSON_CreateArray(), *skipped = cJSON_CreateArray();
    Scan sc = {0};
    Emit em = {.tok = tok, .shard = {&w[0], &w[1]}};
    Progress pr = {.on = cfg->progress, .t0 = now_s()};
    int rc = shard_open(&w[0], tmp, "train.tok", width);
    if (rc == 0) rc = shard_open(&w[1], tmp, "val.tok", width);
    for (int i = 0; i < files.n && rc == 0; i++) {
        struct stat stt;
        if (stat(files.paths[i], &stt) == 0) pr.total += (uint64_t)stt.st_size;
    }
    for (int i = 0; i < files.n && rc == 0; i++) {
        const char *path = files.paths[i];
        uint64_t size = 0;
        sc.bad = 0, sc.ndocs = 0, sc.file_hash = FNV_OFFSET, sc.doc_hash = FNV_OFFSET;
        sc.seed = cfg->seed, sc.val_fraction = cfg->val_fraction, sc.ncarry = 0;
        if ((rc = scan_file(path, cfg->docs, &sc, buf, chunk, &size)) != 0) break;
        st->files++;
        if (sc.bad) {
            const char *why = sc.bad == 1 ? "binary (NUL byte)" : "not UTF-8 text";
            fprintf(stderr, "%sprepare: skipping %s: %s\n", pr.on ? "\n" : "", path, why);
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "path", path);
            cJSON_AddStringToObject(o, "reason", why);
            cJSON_AddItemToArray(skipped, o);
            st->skipped_files++;
            struct stat stt;
            if (stat(path, &stt) == 0) pr.before += (uint64_t)stt.st_size;
            continue;
        }
        char hex[17];
        hex64(sc.file_hash, hex);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "path", path);
        cJSON_AddNumberToObject(o, "bytes", (double)size);
        cJSON_AddStringToObject(o, "fnv1a64", hex);
        cJSON_AddNumberToObject(o, "documents", (double)sc.ndocs);
        cJSON_AddItemToArray(inputs, o);
        st->input_bytes += size;
        em.to_val = sc.to_val, em.doc = 0, em.path = path;
        Seg seg = {.mode = cfg->docs, .chunk = chunk, .text = emit_text, .end = emit_end, .user = &em};
        rc = read_file_into(path, &seg, buf, progress_show, &pr);
        if (rc == 0 && em.doc != sc.ndocs) rc = -1, eid_error("%s: changed while it was being read", path);
        struct stat stt;
        if (stat(path, &stt) == 0) pr.before += (uint64_t)stt.st_size;
    }
    if (pr.on) progress_show(&pr, 0), fputc('\n', stderr);
    if (rc == 0 && w[0].docs + w[1].docs == 0)
        rc = -1, eid_error("no documents in the inputs (an empty corpus: %llu files, %llu skipped as not UTF-8 text)",
                           (unsigned long long)st->files, (unsigned long long)st->skipped_files);
    else if (rc == 0 && w[0].docs == 0)
        rc = -1, eid_error("no training documents (all %llu went to validation: lower --val-fraction)",
                           (unsigned long long)w[1].docs);
    if (rc == 0) rc = shard_close(&w[0], vocab, tok_hash(tok));
    if (rc == 0) rc = shard_close(&w[1], vocab, tok_hash(tok));
    if (rc == 0) rc = tok_save_dir(tok, tmp);
    if (rc == 0) rc = write_manifest(tmp, cfg, tok, width, inputs, skipped, w), inputs = skipped = NULL;
    if (rc == 0) rc = eid_fsync_dir(tmp);
    if (rc == 0 && cfg->force) rc = eid_remove_tree(cfg->out);
    if (rc == 0 && rename(tmp, cfg->out) != 0) rc = -1, eid_error("%s: cannot rename to %s (%s)", tmp, cfg->out, strerror(errno));
    for (int k = 0; k < 2; k++) {
        st->docs[k] = w[k].docs, st->tokens[k] = w[k].tokens, st->bytes[k] = w[k].bytes;
        shard_abort(&w[k]);
    }
    if (rc != 0) eid_remove_tree(tmp); /* nothing half-written is left behind */
    cJSON_Delete(inputs);
    cJSON_Delete(skipped);
    free(sc.to_val);
    free(em.ids);
    free(buf);
    free(chunk);
    paths_free(&files);
    return rc;
}

/* ---- reader ------------------------------------------------------------------------------------- */

static uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t get64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

int ds_split_parse(const uint8_t *buf, size_t n, const char *name, DsSplit *s) {
    memset(s, 0, sizeof *s);
    if (n < DS_HEADER_BYTES || memcmp(buf, DS_MAGIC, 8) != 0)
        return eid_error("%s: not an eidetic token shard (expected magic \"%s\" in a %d-byte header)", name, DS_MAGIC,
                         DS_HEADER_BYTES), -1;
    uint32_t ver = get32(buf + 8);
    if (ver != DS_VERSION) return eid_error("%s: shard version %u (expected %u)", name, ver, DS_VERSION), -1;
    s->vocab = get32(buf + 12), s->width = get32(buf + 16);
    s->tok_hash = get64(buf + 24), s->n_docs = get64(buf + 32), s->n_tokens = get64(buf + 40), s->n_bytes = get64(buf + 48);
    if (s->width != 2 && s->width != 4) return eid_error("%s: token width %u (expected 2 or 4)", name, s->width), -1;
    if (s->vocab == 0 || s->vocab > (1u << 30) || (s->width == 2 && s->vocab > 65536))
        return eid_error("%s: vocabulary size %u does not fit token width %u", name, s->vocab, s->width), -1;
    size_t body = n - DS_HEADER_BYTES;
    if (s->n_tokens > body / s->width || s->n_docs >= body / 8)
        return eid_error("%s: truncated (header says %llu tokens and %llu documents, file has %zu bytes)", name,
                         (unsigned long long)s->n_tokens, (unsigned long long)s->n_docs, n), -1;
    size_t need = (size_t)s->n_tokens * s->width + ((size_t)s->n_docs + 1) * 8;
    if (need != body)
        return eid_error("%s: %s (header says %llu tokens and %llu documents: %zu bytes, file has %zu)", name,
                         need > body ? "truncated" : "has trailing bytes", (unsigned long long)s->n_tokens,
                         (unsigned long long)s->n_docs, need + DS_HEADER_BYTES, n), -1;
    const uint8_t *tk = buf + DS_HEADER_BYTES, *ix = tk + (size_t)s->n_tokens * s->width;
    s->tokens = eid_xmalloc((s->n_tokens ? s->n_tokens : 1) * sizeof *s->tokens);
    s->offsets = eid_xmalloc(((size_t)s->n_docs + 1) * sizeof *s->offsets);
    for (uint64_t i = 0; i < s->n_tokens; i++) {
        uint32_t id = s->width == 2 ? (uint32_t)(tk[2 * i] | tk[2 * i + 1] << 8) : get32(tk + 4 * i);
        if (id >= s->vocab) {
            eid_error("%s: token %llu has id %u, not below the vocabulary size %u", name, (unsigned long long)i, id, s->vocab);
            return ds_split_free(s), -1;
        }
        s->tokens[i] = (int32_t)id;
    }
    for (uint64_t d = 0; d <= s->n_docs; d++) {
        s->offsets[d] = get64(ix + 8 * d);
        int bad = d == 0 ? s->offsets[0] != 0 : s->offsets[d] < s->offsets[d - 1];
        if (!bad && d == s->n_docs) bad = s->offsets[d] != s->n_tokens;
        if (bad) {
            eid_error("%s: document index entry %llu is %llu (expected offsets rising from 0 to %llu)", name,
                      (unsigned long long)d, (unsigned long long)s->offsets[d], (unsigned long long)s->n_tokens);
            return ds_split_free(s), -1;
        }
    }
    return 0;
}

int ds_split_load(const char *path, DsSplit *s) {
    memset(s, 0, sizeof *s);
    FILE *f = fopen(path, "rb");
    if (!f) return eid_error("%s: cannot open (%s)", path, strerror(errno)), -1;
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode))
        return fclose(f), eid_error("%s: not a regular file", path), -1;
    size_t n = (size_t)st.st_size;
    uint8_t *buf = eid_xmalloc(n ? n : 1);
    size_t got = fread(buf, 1, n, f);
    fclose(f);
    if (got != n) return free(buf), eid_error("%s: read failed", path), -1;
    int rc = ds_split_parse(buf, n, path, s);
    free(buf);
    return rc;
}

void ds_split_free(DsSplit *s) {
    free(s->tokens);
    free(s->offsets);
    memset(s, 0, sizeof *s);
}

int ds_open(const char *dir, Dataset *d) {
    memset(d, 0, sizeof *d);
    char path[1100];
    int found = 0;
    d->tok = tok_load_dir(dir, &found);
    if (!d->tok) {
        if (!found) eid_error("%s: no tokenizer (eidetic_tokenizer.json) — not a dataset made by eidetic prepare", dir);
        return -1;
    }
    snprintf(path, sizeof path, "%s/train.tok", dir);
    if (ds_split_load(path, &d->train) != 0) return ds_close(d), -1;
    snprintf(path, sizeof path, "%s/val.tok", dir);
    if (ds_split_load(path, &d->val) != 0) return ds_close(d), -1;
    const DsSplit *sp[2] = {&d->train, &d->val};
    for (int k = 0; k < 2; k++) {
        snprintf(path, sizeof path, "%s/%s", dir, k ? "val.tok" : "train.tok");
        if (sp[k]->tok_hash != tok_hash(d->tok) || sp[k]->vocab != (uint32_t)tok_vocab_size(d->tok)) {
            eid_error("%s: made by another tokenizer (hash %016llx, vocab %u) than %s/eidetic_tokenizer.json (hash %016llx, vocab %d)",
                      path, (unsigned long long)sp[k]->tok_hash, sp[k]->vocab, dir,
                      (unsigned long long)tok_hash(d->tok), tok_vocab_size(d->tok));
            return ds_close(d), -1;
        }
    }
    return 0;
}

void ds_close(Dataset *d) {
    ds_split_free(&d->train);
    ds_split_free(&d->val);
    tok_free(d->tok);
    d->tok = NULL;
}

/* ---- subword tokenizer sample ------------------------------------------------------------------ */

int ds_write_sample(const char *const *inputs, int n_inputs, const char *path, size_t max_bytes) {
    PathList files = {0};
    for (int i = 0; i < n_inputs; i++)
        if (walk(inputs[i], &files) != 0) return paths_free(&files), -1;
    FILE *out = fopen(path, "wb");
    if (!out) return paths_free(&files), eid_error("%s: cannot create (%s)", path, strerror(errno)), -1;
    char *buf = eid_xmalloc(READ_BUF);
    size_t written = 0;
    int rc = 0;
    for (int i = 0; i < files.n && rc == 0 && written < max_bytes; i++) {
        gzFile f = gzopen(files.paths[i], "rb");
        if (!f) { rc = -1, eid_error("%s: cannot open (%s)", files.paths[i], strerror(errno ? errno : EIO)); break; }
        size_t want = EID_MIN((size_t)READ_BUF, max_bytes - written);
        int got = gzread(f, buf, (unsigned)want);
        gzclose(f);
        if (got < 0) { rc = -1, eid_error("%s: read failed", files.paths[i]); break; }
        size_t n = utf8_complete_prefix(buf, (size_t)got);
        if (memchr(buf, 0, n) || !utf8_valid(buf, n)) continue; /* ds_prepare skips it too */
        if (fwrite(buf, 1, n, out) != n || fputc('\n', out) == EOF) rc = -1, eid_error("%s: write failed", path);
        written += n + 1;
    }
    if (fclose(out) != 0 && rc == 0) rc = -1, eid_error("%s: write failed", path);
    if (rc == 0 && written == 0) rc = -1, eid_error("no UTF-8 text in the inputs to train a tokenizer on (an empty corpus)");
    if (rc != 0) remove(path);
    free(buf);
    paths_free(&files);
    return rc;
}
