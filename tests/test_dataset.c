/* test_dataset.c — eidetic prepare's library half and the corpus data source (data/dataset.h,
 * data/corpus.h; docs/lm.md "Datasets (`eidetic prepare`)").
 *  - format round trip: every document's tokens decode to its paragraph, .gz and directories read,
 *    NUL / non-UTF-8 files skipped and counted;
 *  - a re-run gives byte-identical shards and manifest;
 *  - the split follows each document's bytes: renamed, reordered inputs put the same documents in
 *    validation;
 *  - every refusal names the file: an existing output, an empty corpus (nothing left behind),
 *    truncated / foreign / trailing-byte shards, ids ≥ vocab, a falling document index;
 *  - corpus rows: labels are the next token, SEG_START exactly at row starts and document starts,
 *    CAUSAL everywhere; one epoch visits every window once; validation rows predict every token
 *    after the first exactly once; rank slices concatenate to the one-process batch; the state
 *    round-trips. */
#include <unistd.h>
#include <zlib.h>
#include "data/corpus.h"
#include "data/dataset.h"
#include "io/files.h"
#include "testutil.h"

static char root[256];

static void put(const char *rel, const char *text, size_t n) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", root, rel);
    FILE *f = fopen(p, "wb");
    fwrite(text, 1, n, f);
    fclose(f);
}

static void put_gz(const char *rel, const char *text) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", root, rel);
    gzFile f = gzopen(p, "wb");
    gzwrite(f, text, (unsigned)strlen(text));
    gzclose(f);
}

static char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    rewind(f);
    char *b = malloc(*n + 1);
    *n = fread(b, 1, *n, f);
    fclose(f);
    return b;
}

static int same_file(const char *a, const char *b) {
    size_t na = 0, nb = 0;
    char *x = slurp(a, &na), *y = slurp(b, &nb);
    int same = x && y && na == nb && memcmp(x, y, na) == 0;
    free(x), free(y);
    return same;
}

static int prepare(const char *const *in, int n, const char *out, double vf, int force, DsStats *st) {
    Tokenizer *t = tok_new_byte();
    DsPrepareCfg c = {.inputs = in, .n_inputs = n, .out = out, .force = force, .val_fraction = vf, .seed = 7,
                      .docs = DS_DOCS_PARA};
    int rc = ds_prepare(&c, t, st);
    tok_free(t);
    return rc;
}

static const char *paras[] = {"alpha beta\ngamma", "caf\xc3\xa9 \xe2\x82\xac", "delta", "epsilon zeta eta", "theta",
                              "iota kappa", "lambda mu", "nu xi omicron pi", "rho", "sigma tau upsilon"};
enum { NP = 10 };

/* sorted "\x01"-joined texts of a split's documents */
static char *doc_set(const DsSplit *s) {
    char **docs = calloc(s->n_docs + 1, sizeof *docs);
    size_t total = 1;
    for (uint64_t d = 0; d < s->n_docs; d++) {
        size_t n = s->offsets[d + 1] - s->offsets[d];
        docs[d] = malloc(n + 1);
        for (size_t i = 0; i < n; i++) docs[d][i] = (char)s->tokens[s->offsets[d] + i];
        docs[d][n] = 0;
        total += n + 1;
    }
    for (uint64_t i = 0; i < s->n_docs; i++) /* insertion sort: a handful of documents */
        for (uint64_t j = i; j > 0 && strcmp(docs[j - 1], docs[j]) > 0; j--) {
            char *t = docs[j]; docs[j] = docs[j - 1], docs[j - 1] = t;
        }
    char *out = calloc(total, 1);
    for (uint64_t d = 0; d < s->n_docs; d++) strcat(out, docs[d]), strcat(out, "\x01"), free(docs[d]);
    free(docs);
    return out;
}

static void test_prepare(void) {
    char text1[512] = "", text2[512] = "";
    /* a.txt: paragraphs 0-3 (with extra blank lines); sub/b.txt: 4-6; c.txt.gz: 7-9 */
    snprintf(text1, sizeof text1, "\n%s\n\n%s\n\n\n\n%s\n\n%s\n", paras[0], paras[1], paras[2], paras[3]);
    put("in/a.txt", text1, strlen(text1));
    snprintf(text2, sizeof text2, "%s\n\n%s\n\n%s", paras[4], paras[5], paras[6]);
    put("in/sub/b.txt", text2, strlen(text2));
    char gz[256];
    snprintf(gz, sizeof gz, "%s\n\n%s\n\n%s\n", paras[7], paras[8], paras[9]);
    put_gz("in/c.txt.gz", gz);
    put("in/d.bin", "ab\0cd", 5);
    put("in/e.txt", "ok \xff\xfe", 5);
    put("in/f.txt", "cut \xe2\x82", 6); /* ends inside a character */

    char in[300], out[300], out2[300], path[400], path2[400];
    snprintf(in, sizeof in, "%s/in", root);
    snprintf(out, sizeof out, "%s/ds", root);
    snprintf(out2, sizeof out2, "%s/ds2", root);
    const char *inputs[1] = {in};
    DsStats st;
    CHECK(prepare(inputs, 1, out, 0.4, 0, &st) == 0, "prepare: %s", eid_last_error());
    CHECK(st.files == 6 && st.skipped_files == 3, "files %llu skipped %llu", (unsigned long long)st.files,
          (unsigned long long)st.skipped_files);
    CHECK(st.docs[0] + st.docs[1] == NP, "documents %llu + %llu", (unsigned long long)st.docs[0], (unsigned long long)st.docs[1]);
    CHECK(st.docs[0] > 0 && st.docs[1] > 0, "both splits hold documents");
    Dataset d;
    CHECK(ds_open(out, &d) == 0, "ds_open: %s", eid_last_error());
    /* round trip: the union of both splits' documents is the paragraphs, byte for byte */
    char *tr = doc_set(&d.train), *va = doc_set(&d.val);
    size_t want_bytes = 0;
    for (int i = 0; i < NP; i++) {
        char key[64];
        snprintf(key, sizeof key, "%s\x01", paras[i]);
        CHECK((strstr(tr, key) != NULL) + (strstr(va, key) != NULL) == 1, "paragraph %d in exactly one split", i);
        want_bytes += strlen(paras[i]);
    }
    CHECK(d.train.n_bytes + d.val.n_bytes == want_bytes, "UTF-8 bytes %llu, want %zu",
          (unsigned long long)(d.train.n_bytes + d.val.n_bytes), want_bytes);
    CHECK(d.train.width == 2 && d.train.vocab == 257, "width %u vocab %u", d.train.width, d.train.vocab);

    /* byte-identical re-run */
    CHECK(prepare(inputs, 1, out2, 0.4, 0, &st) == 0, "re-run: %s", eid_last_error());
    const char *files[] = {"train.tok", "val.tok", "manifest.json", "eidetic_tokenizer.json"};
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/%s", out, files[i]);
        snprintf(path2, sizeof path2, "%s/%s", out2, files[i]);
        CHECK(same_file(path, path2), "%s differs between two runs", files[i]);
    }
    /* the split depends on the documents, not on names or order: the same paragraphs in reverse, renamed */
    char rev[512] = "";
    for (int i = NP - 1; i >= 0; i--) strcat(rev, paras[i]), strcat(rev, "\n\n");
    put("rev/zz.txt", rev, strlen(rev));
    char rin[300], rout[300];
    snprintf(rin, sizeof rin, "%s/rev", root);
    snprintf(rout, sizeof rout, "%s/dsrev", root);
    const char *rinputs[1] = {rin};
    CHECK(prepare(rinputs, 1, rout, 0.4, 0, &st) == 0, "reversed: %s", eid_last_error());
    Dataset r;
    CHECK(ds_open(rout, &r) == 0, "ds_open reversed: %s", eid_last_error());
    char *rva = doc_set(&r.val);
    CHECK(strcmp(rva, va) == 0, "validation documents differ with the input order: '%s' vs '%s'", rva, va);
    free(rva), free(tr), free(va);
    ds_close(&r);

    /* refusals */
    CHECK(prepare(inputs, 1, out, 0.4, 0, &st) != 0 && strstr(eid_last_error(), out), "existing output: %s", eid_last_error());
    CHECK(prepare(inputs, 1, out, 0.4, 1, &st) == 0, "--force replaces: %s", eid_last_error());
    char bad[300], bout[300];
    snprintf(bad, sizeof bad, "%s/bad", root);
    snprintf(bout, sizeof bout, "%s/dsbad", root);
    put("bad/x.bin", "\0\0\0", 3);
    const char *binputs[1] = {bad};
    CHECK(prepare(binputs, 1, bout, 0.1, 0, &st) != 0 && strstr(eid_last_error(), "empty corpus"), "empty corpus: %s",
          eid_last_error());
    snprintf(path, sizeof path, "%s.tmp", bout);
    CHECK(!eid_file_exists(bout) && !eid_file_exists(path), "a failed prepare left %s or its .tmp", bout);
    const char *missing[1] = {"/nonexistent/eidetic/input"};
    CHECK(prepare(missing, 1, bout, 0.1, 0, &st) != 0 && strstr(eid_last_error(), missing[0]), "missing input: %s",
          eid_last_error());

    /* shard corruption: each names the file */
    snprintf(path, sizeof path, "%s/train.tok", out);
    size_t n = 0;
    char *shard = slurp(path, &n);
    DsSplit s;
    struct { const char *what; size_t len; size_t at; uint8_t val; } cases[] = {
        {"truncated", n - 3, 0, 0},          {"trailing", n + 8, 0, 0},  {"magic", n, 1, 'X'},
        {"version", n, 8, 9},                {"width", n, 16, 3},        {"id >= vocab", n, DS_HEADER_BYTES + 1, 0x7f},
        {"index", n, n - 8 * (size_t)(d.train.n_docs), 0xff},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        uint8_t *b = calloc(cases[k].len + 8, 1);
        memcpy(b, shard, EID_MIN(n, cases[k].len));
        if (cases[k].at) b[cases[k].at] = cases[k].val;
        snprintf(path2, sizeof path2, "%s/corrupt.tok", root);
        FILE *f = fopen(path2, "wb");
        fwrite(b, 1, cases[k].len, f);
        fclose(f);
        CHECK(ds_split_load(path2, &s) != 0 && strstr(eid_last_error(), path2), "%s shard accepted or unnamed: %s",
              cases[k].what, eid_last_error());
        free(b);
    }
    CHECK(ds_split_load(path, &s) == 0, "the intact shard loads: %s", eid_last_error());
    ds_split_free(&s);
    free(shard);
    ds_close(&d);
}

/* ---- the corpus source ---- */

static void test_corpus(void) {
    /* a larger corpus: 40 documents of varied lengths */
    char text[8192] = "";
    uint32_t lcg = 12345; /* pseudo-random letters: no two windows of the stream are alike */
    for (int i = 0; i < 40; i++) {
        char p[128];
        int len = 3 + (i * 7) % 40, k = snprintf(p, sizeof p, "doc %d ", i);
        for (int j = 0; j < len; j++) lcg = lcg * 1664525u + 1013904223u, p[k++] = (char)('a' + (lcg >> 24) % 26);
        p[k++] = '\n', p[k++] = '\n', p[k] = 0;
        strcat(text, p);
    }
    put("big.txt", text, strlen(text));
    char in[300], out[300];
    snprintf(in, sizeof in, "%s/big.txt", root);
    snprintf(out, sizeof out, "%s/dsbig", root);
    const char *inputs[1] = {in};
    DsStats st;
    CHECK(prepare(inputs, 1, out, 0.25, 0, &st) == 0, "prepare big: %s", eid_last_error());
    Dataset d;
    CHECK(ds_open(out, &d) == 0, "open big: %s", eid_last_error());
    enum { T = 16, B = 8 };
    Corpus c;
    CHECK(corpus_init(&c, &d, T, out) == 0, "corpus_init: %s", eid_last_error());
    int eos = c.eos;
    DataSource s;
    source_corpus_init(&s, &c, 5);
    uint64_t W = (c.n[0] - 1) / T;
    int *tok = malloc(sizeof(int) * W * T * 2), *lab = malloc(sizeof(int) * W * T * 2);
    uint8_t *fl = malloc(W * T * 2);
    CHECK(source_rows(&s, STREAM_TRAIN, 0, (int)W * 2, tok, lab, fl) == 0, "rows: %s", eid_last_error());
    int bad_label = 0, bad_flag = 0;
    uint8_t *seen = calloc(W, 1);
    int dup = 0, epoch2_same = 1;
    for (uint64_t r = 0; r < W * 2; r++) {
        const int *tk = tok + r * T, *lb = lab + r * T;
        const uint8_t *f = fl + r * T;
        /* which window: the stream position whose T tokens match */
        uint64_t w = W;
        for (uint64_t k = 0; k < W && w == W; k++)
            if (!memcmp(c.stream[0] + k * T, tk, sizeof(int) * T) && c.stream[0][k * T + T] == lb[T - 1]) w = k;
        if (w == W) { bad_label++; continue; }
        if (r < W) dup += seen[w]++;
        for (int t = 0; t < T; t++) {
            if (lb[t] != c.stream[0][w * T + t + 1]) bad_label++;
            int start = t == 0 || c.doc_start[0][w * T + t];
            if (f[t] != (FLAG_CAUSAL | (start ? FLAG_SEG_START : 0))) bad_flag++;
            if (t > 0 && tk[t - 1] == eos && !(f[t] & FLAG_SEG_START)) bad_flag++;
        }
        if (r >= W && memcmp(tk, tok + (r - W) * T, sizeof(int) * T)) epoch2_same = 0;
    }
    CHECK(bad_label == 0, "%d labels or windows wrong", bad_label);
    CHECK(bad_flag == 0, "%d flags wrong", bad_flag);
    CHECK(dup == 0, "one epoch visits %d windows twice", dup);
    CHECK(W < 3 || !epoch2_same, "the second epoch repeats the first's order");
    free(seen);
    /* pure function of (seed, index): a later read of rows 3..5 equals the earlier */
    int tk2[3 * T], lb2[3 * T];
    source_rows(&s, STREAM_TRAIN, 3, 3, tk2, lb2, NULL);
    CHECK(!memcmp(tk2, tok + 3 * T, sizeof tk2), "rows are not a function of the index");
    DataSource s2;
    source_corpus_init(&s2, &c, 6);
    source_rows(&s2, STREAM_TRAIN, 0, 3, tk2, lb2, NULL);
    CHECK(memcmp(tk2, tok, sizeof tk2) != 0, "another seed gives the same order");

    /* validation: every token after the first predicted exactly once, in order, padded at the end */
    uint64_t vr = corpus_val_rows(&c), labelled = 0;
    int *vt = malloc(sizeof(int) * vr * T), *vl = malloc(sizeof(int) * vr * T);
    uint8_t *vf = malloc(vr * T);
    CHECK(source_rows(&s, STREAM_TEST, 0, (int)vr, vt, vl, vf) == 0, "val rows: %s", eid_last_error());
    int vbad = 0;
    for (uint64_t i = 0; i < vr * T; i++) {
        if (vl[i] == -100) { vbad += vf[i] != FLAG_PAD; continue; }
        vbad += vl[i] != c.stream[1][labelled + 1] || vt[i] != c.stream[1][labelled];
        labelled++;
    }
    CHECK(vbad == 0 && labelled == c.n[1] - 1, "validation labels %llu of %llu, %d wrong", (unsigned long long)labelled,
          (unsigned long long)(c.n[1] - 1), vbad);
    CHECK(source_rows(&s, STREAM_TEST, vr, 1, vt, vl, vf) != 0, "a validation row past the end is refused");

    /* ranks: world 2 and 4 slices concatenate to the one-process batch; cursor and restore */
    int one[B * T], part[B * T], l1[B * T], lp[B * T];
    uint8_t f1[B * T], fp[B * T];
    DataSource a;
    source_corpus_init(&a, &c, 5);
    a.cursor = 11;
    source_next(&a, B, one, l1, f1);
    for (int world = 2; world <= 4; world *= 2) {
        int ok = 1;
        for (int rk = 0; rk < world; rk++) {
            DataSource b;
            source_corpus_init(&b, &c, 5);
            b.cursor = 11;
            source_set_rank(&b, rk, world);
            int rows = B / world;
            source_next(&b, B, part + rk * rows * T, lp + rk * rows * T, fp + rk * rows * T);
            ok &= b.cursor == a.cursor;
        }
        CHECK(ok && !memcmp(one, part, sizeof one) && !memcmp(l1, lp, sizeof l1) && !memcmp(f1, fp, sizeof f1),
              "world %d slices differ from the one-process batch", world);
    }
    char state[64];
    CHECK(source_save(&a, state, sizeof state) == 0, "save");
    DataSource b;
    source_corpus_init(&b, &c, 5);
    CHECK(source_restore(&b, state) == 0 && b.cursor == a.cursor, "restore '%s'", state);
    source_next(&a, B, one, l1, f1);
    source_next(&b, B, part, lp, fp);
    CHECK(!memcmp(one, part, sizeof one), "restored source reads other rows");
    free(tok), free(lab), free(fl), free(vt), free(vl), free(vf);
    corpus_free(&c);
    /* a row longer than the training stream is refused, naming the dataset */
    CHECK(corpus_init(&c, &d, 100000, out) != 0 && strstr(eid_last_error(), out), "T too long: %s", eid_last_error());
    ds_close(&d);
}

int main(void) {
    snprintf(root, sizeof root, "/tmp/eidetic_test_dataset.XXXXXX");
    if (!mkdtemp(root)) return perror("mkdtemp"), 1;
    char p[300];
    snprintf(p, sizeof p, "%s/in/sub", root);
    eid_mkdir_p(p);
    snprintf(p, sizeof p, "%s/rev", root);
    eid_mkdir_p(p);
    snprintf(p, sizeof p, "%s/bad", root);
    eid_mkdir_p(p);
    test_prepare();
    test_corpus();
    eid_remove_tree(root);
    return t_summary("test_dataset");
}
