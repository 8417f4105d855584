/* tok_spm.cc — SentencePiece tokenizers over the Debian library (libsentencepiece-dev): load a
 * tokenizer.model, encode, pieces, and training on a user's text. docs/lm.md "Tokenizers".
 * The only C++ in eidetic: everything crosses the extern "C" boundary of tok_impl.h, and no C++
 * exception leaves this file (each entry point catches them and reports an eid_error).
 *
 * Pieces: "▁" (U+2581) is a space, byte-fallback pieces "<0xNN>" are that byte, control and unknown
 * pieces are special and read as their name ("<s>", "</s>", "<unk>"); the first piece of a text
 * loses the space the model prefixed (add_dummy_prefix, detected at load). */
#include <fstream>
#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <unordered_map>
#include <vector>
#include "text/tok_impl.h"

/* From core/common.h and io/files.h, whose C11 spellings (restrict, _Noreturn) C++ does not take. */
extern "C" {
void eid_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void *eid_xcalloc(size_t n, size_t size);
void *eid_xrealloc(void *p, size_t n);
int eid_mkdir_p(const char *path);
int eid_write_atomic(const char *path, const void *data, size_t n);
}

namespace {

struct Spm {
    sentencepiece::SentencePieceProcessor sp;
    std::string file;                 /* the model's bytes (saved as they are) */
    std::vector<std::string> piece;   /* the text of each id */
    std::vector<unsigned char> special;
    bool dummy_prefix = false;        /* the model puts a space before the text */
};

const char kSpace[] = "\xe2\x96\x81"; /* ▁ */

/* the text of one piece: ▁ → space; "<0xNN>" → byte NN */
std::string piece_text(const sentencepiece::SentencePieceProcessor &sp, int id) {
    std::string p = sp.IdToPiece(id);
    if (sp.IsByte(id) && p.size() == 6 && p.compare(0, 3, "<0x") == 0 && p[5] == '>')
        return std::string(1, (char)std::strtol(p.substr(3, 2).c_str(), nullptr, 16));
    if (sp.IsControl(id) || sp.IsUnknown(id) || sp.IsUnused(id)) return p;
    std::string out;
    for (size_t i = 0; i < p.size();) {
        if (p.compare(i, 3, kSpace) == 0) {
            out += ' ';
            i += 3;
        } else {
            out += p[i++];
        }
    }
    return out;
}

int spm_encode(const Tokenizer *t, const char *text, size_t n, int **ids, size_t *cap, size_t *len) {
    const Spm *s = static_cast<const Spm *>(t->impl);
    try {
        std::vector<int> out;
        auto st = s->sp.Encode(absl::string_view(text, n), &out);
        if (!st.ok()) {
            eid_error("SentencePiece encode failed: %s", st.ToString().c_str());
            return -1;
        }
        if (*len + out.size() > *cap) {
            size_t c = *cap ? *cap : 1024;
            while (c < *len + out.size()) c *= 2;
            *ids = static_cast<int *>(eid_xrealloc(*ids, c * sizeof **ids));
            *cap = c;
        }
        if (!out.empty()) std::memcpy(*ids + *len, out.data(), out.size() * sizeof(int));
        *len += out.size();
        return 0;
    } catch (const std::exception &e) {
        eid_error("SentencePiece encode failed: %s", e.what());
        return -1;
    }
}

int spm_piece(const Tokenizer *t, int id, int at_start, char *buf, int cap) {
    const Spm *s = static_cast<const Spm *>(t->impl);
    const std::string &p = s->piece[(size_t)id];
    size_t skip = at_start && s->dummy_prefix && !s->special[(size_t)id] && !p.empty() && p[0] == ' ' &&
                  !s->sp.IsByte(id);
    size_t n = p.size() - skip;
    if (n > (size_t)cap) return -1;
    std::memcpy(buf, p.data() + skip, n);
    return (int)n;
}

int spm_is_special(const Tokenizer *t, int id) { return static_cast<const Spm *>(t->impl)->special[(size_t)id]; }

int spm_save(const Tokenizer *t, const char *dir, const char **file) {
    const Spm *s = static_cast<const Spm *>(t->impl);
    std::string p = std::string(dir) + "/tokenizer.model";
    *file = "tokenizer.model";
    return eid_write_atomic(p.c_str(), s->file.data(), s->file.size());
}

void spm_free(void *impl) { delete static_cast<Spm *>(impl); }

const TokOps spm_ops = {"spm", spm_encode, spm_piece, spm_is_special, spm_save, spm_free};

/* A tokenizer from a model's bytes; path names it in messages. */
Tokenizer *from_bytes(const char *path, std::string bytes) {
    Spm *s = new Spm;
    s->file = std::move(bytes);
    auto st = s->sp.LoadFromSerializedProto(s->file);
    if (!st.ok()) {
        eid_error("%s: not a SentencePiece model (%s)", path, st.ToString().c_str());
        delete s;
        return nullptr;
    }
    int n = s->sp.GetPieceSize();
    if (n <= 0) {
        eid_error("%s: SentencePiece model has no pieces", path);
        delete s;
        return nullptr;
    }
    s->piece.resize((size_t)n);
    s->special.resize((size_t)n);
    for (int id = 0; id < n; id++) {
        s->piece[(size_t)id] = piece_text(s->sp, id);
        s->special[(size_t)id] = s->sp.IsControl(id) || s->sp.IsUnknown(id) || s->sp.IsUnused(id);
        if (s->piece[(size_t)id].size() > TOK_MAX_PIECE) {
            eid_error("%s: piece %d is longer than %d bytes", path, id, TOK_MAX_PIECE);
            delete s;
            return nullptr;
        }
    }
    /* does the model prefix a space? (normalizer_spec.add_dummy_prefix, seen from the outside) */
    std::vector<std::string> first;
    s->dummy_prefix = s->sp.Encode("x", &first).ok() && !first.empty() && first[0].compare(0, 3, kSpace) == 0;
    Tokenizer *t = static_cast<Tokenizer *>(eid_xcalloc(1, sizeof *t));
    t->ops = &spm_ops;
    t->impl = s;
    t->vocab = n;
    t->eos = s->sp.eos_id();
    t->bos = s->sp.bos_id();
    if (t->eos >= n) t->eos = -1;
    if (t->bos >= n) t->bos = -1;
    t->hash = tok_fnv1a(tok_fnv1a(TOK_FNV_SEED, "spm", 3), s->file.data(), s->file.size());
    return t;
}

bool read_all(const char *path, std::string *out) {
    FILE *f = std::fopen(path, "rb");
    if (!f) return false;
    char buf[1 << 16];
    size_t r;
    while ((r = std::fread(buf, 1, sizeof buf, f)) > 0) out->append(buf, r);
    bool ok = !std::ferror(f);
    std::fclose(f);
    return ok;
}

} // namespace

extern "C" Tokenizer *tok_spm_load(const char *path) {
    try {
        std::string bytes;
        if (!read_all(path, &bytes)) {
            eid_error("%s: cannot read (expected a SentencePiece tokenizer.model)", path);
            return nullptr;
        }
        return from_bytes(path, std::move(bytes));
    } catch (const std::exception &e) {
        eid_error("%s: cannot load the SentencePiece model: %s", path, e.what());
        return nullptr;
    }
}

namespace {
/* The sample's lines, fed to the trainer through an iterator instead of its "input" option: the
 * trainer records "input" (the sample's path) inside the model, so two runs writing their samples
 * to different places would give different model bytes and tokenizer hashes. */
class SampleLines : public sentencepiece::SentenceIterator {
  public:
    explicit SampleLines(const char *path) : in_(path), path_(path) { Next(); }
    bool done() const override { return done_; }
    void Next() override {
        if (!std::getline(in_, line_)) done_ = true;
    }
    const std::string &value() const override { return line_; }
    sentencepiece::util::Status status() const override {
        if (in_.bad() || (!in_.is_open()))
            return sentencepiece::util::Status(sentencepiece::util::StatusCode::kNotFound, "cannot read " + path_);
        return sentencepiece::util::Status();
    }

  private:
    std::ifstream in_;
    std::string path_, line_;
    bool done_ = false;
};
} // namespace

extern "C" Tokenizer *tok_spm_train(const char *sample, int vocab, const char *dir) {
    if (vocab < 300 || vocab > (1 << 20)) {
        eid_error("--vocab %d: a SentencePiece vocabulary needs 300..%d pieces (256 of them are the byte fallback)", vocab,
                  1 << 20);
        return nullptr;
    }
    try {
        /* Deterministic: one thread, no sampling or shuffling of the sample's lines. Identity
         * normalisation and kept whitespace, so decode(encode(text)) == text for valid UTF-8. */
        std::unordered_map<std::string, std::string> args = {
            {"model_type", "unigram"},
            {"vocab_size", std::to_string(vocab)},
            {"byte_fallback", "true"},
            {"character_coverage", "0.9995"},
            {"normalization_rule_name", "identity"},
            {"remove_extra_whitespaces", "false"},
            {"hard_vocab_limit", "false"},
            {"num_threads", "1"},
            {"input_sentence_size", "0"},
            {"shuffle_input_sentence", "false"},
            {"max_sentence_length", "16384"},
            {"minloglevel", "2"},
            {"unk_id", "0"},
            {"bos_id", "1"},
            {"eos_id", "2"},
            {"pad_id", "-1"},
        };
        std::string model;
        SampleLines lines(sample);
        auto st = sentencepiece::SentencePieceTrainer::Train(args, &lines, &model);
        if (!st.ok()) {
            eid_error("%s: SentencePiece training failed: %s", sample, st.ToString().c_str());
            return nullptr;
        }
        Tokenizer *t = from_bytes(sample, std::move(model));
        if (!t) return nullptr;
        if (tok_save_dir(t, dir)) {
            tok_free(t);
            return nullptr;
        }
        return t;
    } catch (const std::exception &e) {
        eid_error("%s: SentencePiece training failed: %s", sample, e.what());
        return nullptr;
    }
}
