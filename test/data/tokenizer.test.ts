import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BpeTrainer } from '../../src/data/bpe.js';
import { BYTE_TO_CHAR, preTokenize } from '../../src/data/byteLevel.js';
import { Rng } from '../../src/data/random.js';
import { Tokenizer, TokenizerFormatError } from '../../src/data/tokenizer.js';
import { tempDir } from './fixtures.js';

const WORDS = ['red', 'dress', 'shirt', 'polka', 'dot', 'striped', 'the', 'with', 'sleeves', 'short', 'long', '连衣裙', '红色', 'café', 'naïve', '👗'];
/** The fixed corpus behind the Hugging Face fixture ids below: change it and they change too. */
function fixtureCorpus(): string[] {
  const corpus: string[] = [];
  for (let i = 0; i < 400; i++) corpus.push(`${WORDS[i % WORDS.length]} ${WORDS[(i * 7) % WORDS.length]} ${WORDS[(i * 3) % WORDS.length]}, ${i}!`);
  return corpus;
}

const ROUND_TRIP = [
  '',
  ' ',
  'Hello, world!',
  '红色波点短袖连衣裙，纯棉。',
  'emoji 👗👠🧥 and family 👩‍👩‍👧 and flags 🇨🇳🇫🇷',
  'accents: café, naïve, Ångström, São Paulo, e\u0301 (combining)',
  '  leading and trailing  \n\n\ttabs\r\nCRLF  ',
  "it's, we'll, they're — ½ ≠ ∞; \u0000 nul \uffff",
  'Ελληνικά русский العربية हिन्दी 日本語 한국어',
];

test('byte-level alphabet covers all 256 bytes with distinct printable characters', () => {
  assert.equal(new Set(BYTE_TO_CHAR).size, 256);
  assert.equal(BYTE_TO_CHAR[32], 'Ġ');
  assert.equal(BYTE_TO_CHAR[10], 'Ċ');
  assert.equal(BYTE_TO_CHAR[65], 'A');
  // Pre-tokens tile the text exactly: nothing dropped, nothing added.
  for (const s of ROUND_TRIP) assert.equal(preTokenize(s).join(''), s);
});

test('exact round trip for any Unicode string, trained or not', () => {
  const tok = Tokenizer.train(fixtureCorpus(), { vocabSize: 400, imageCodes: 32 });
  const untrained = Tokenizer.train([], { vocabSize: 266, imageCodes: 0 });
  const rng = new Rng(3);
  const random: string[] = [];
  for (let i = 0; i < 200; i++) {
    let s = '';
    const n = rng.int(12);
    for (let j = 0; j < n; j++) {
      // Random code points from the whole range, skipping lone surrogates (not valid Unicode).
      let cp = rng.int(0x110000);
      if (cp >= 0xd800 && cp <= 0xdfff) cp = 0x41;
      s += String.fromCodePoint(cp);
    }
    random.push(s);
  }
  for (const s of [...ROUND_TRIP, ...random]) {
    assert.equal(tok.decode(tok.encode(s)), s, JSON.stringify(s));
    assert.equal(untrained.decode(untrained.encode(s)), s, JSON.stringify(s));
  }
  assert.ok(tok.encode('red dress').length < new TextEncoder().encode('red dress').length, 'merges shorten common words');
});

test('vocabulary layout: specials, task tokens, bytes, merges, then the image-code block', () => {
  const tok = Tokenizer.train(fixtureCorpus(), { vocabSize: 400, imageCodes: 32 });
  assert.deepEqual([tok.padId, tok.bosId, tok.eosId, tok.unkId], [0, 1, 2, 3]);
  for (const t of ['<sep>', '<mask>', '<describe>', '<design>', '<answer>', '<embed>']) assert.ok(tok.tokenToId(t)! < 10, t);
  assert.equal(tok.textVocabSize, 385, 'the corpus runs out of pairs seen twice before 400');
  assert.equal(tok.vocabSize, tok.textVocabSize + 32);
  assert.equal(tok.imageCodeId(0), tok.textVocabSize);
  assert.equal(tok.idToToken(tok.imageCodeId(31)), '<img_31>');
  assert.equal(tok.imageCodeOf(tok.imageCodeId(7)), 7);
  assert.equal(tok.imageCodeOf(5), undefined);
  assert.throws(() => tok.imageCodeId(32), RangeError);
  const ids = tok.encode('red dress', { addBos: true, addEos: true });
  assert.equal(ids[0], tok.bosId);
  assert.equal(ids.at(-1), tok.eosId);
  assert.equal(tok.decode(ids), '<bos>red dress<eos>');
  assert.equal(tok.decode(ids, { skipSpecialTokens: true }), 'red dress');
  assert.equal(tok.decode([tok.imageCodeId(3), tok.imageCodeId(4)]), '<img_3><img_4>');
});

test('special tokens in user text stay text unless asked for', () => {
  const tok = Tokenizer.train(fixtureCorpus(), { vocabSize: 300, imageCodes: 8 });
  const text = 'a <eos> b <img_3> c <img_99>';
  const plain = tok.encode(text);
  assert.ok(!plain.includes(tok.eosId));
  assert.equal(tok.decode(plain), text);
  const parsed = tok.encode(text, { parseSpecialTokens: true });
  assert.ok(parsed.includes(tok.eosId));
  assert.ok(parsed.includes(tok.imageCodeId(3)));
  assert.equal(tok.decode(parsed), text, '<img_99> is outside the block, so it stays text');
});

test('tokenizer.json round trip, and ids identical to Hugging Face tokenizers', async (t) => {
  const dir = tempDir(t);
  const tok = Tokenizer.train(fixtureCorpus(), { vocabSize: 400, imageCodes: 32 });
  const file = join(dir, 'tokenizer.json');
  await tok.save(file);
  const json = JSON.parse(readFileSync(file, 'utf8'));
  assert.equal(json.model.type, 'BPE');
  assert.equal(json.pre_tokenizer.type, 'ByteLevel');
  assert.equal(json.decoder.type, 'ByteLevel');
  assert.equal(json.added_tokens.length, 10 + 32);
  assert.ok(json.added_tokens.every((a: { special: boolean }) => a.special));
  assert.equal(json.model.vocab['<img_0>'], 385);
  const loaded = await Tokenizer.load(file);
  assert.deepEqual(loaded.toJSON(), tok.toJSON());
  // Expected ids from Hugging Face `tokenizers` 0.22.2 (Tokenizer.from_file on this same file).
  const hf: Array<[string, number[]]> = [
    ['A red polka-dot dress with short sleeves, 42!', [75, 326, 325, 55, 342, 339, 327, 341, 336, 54, 349, 60, 43]],
    ['红色连衣裙 👗 café naïve', [323, 324, 328, 330, 332]],
    ['  two  spaces\n\tand tabs ', [42, 42, 126, 129, 121, 42, 266, 122, 107, 109, 268, 20, 19, 107, 120, 110, 42, 126, 107, 108, 125, 42]],
  ];
  for (const [text, ids] of hf) {
    assert.deepEqual(loaded.encode(text), ids, text);
    assert.equal(loaded.decode(ids), text);
  }
  // Newer tokenizers write merges as pairs; both forms load the same.
  json.model.merges = json.model.merges.map((m: string) => m.split(' '));
  assert.deepEqual(Tokenizer.fromJSON(json).encode(hf[0]![0]), hf[0]![1]);
});

test('malformed tokenizer files are refused with the reason', () => {
  const good = Tokenizer.train(['abc abc'], { vocabSize: 270, imageCodes: 2 }).toJSON();
  assert.throws(() => Tokenizer.fromJSON({}), /no "model" object/);
  assert.throws(() => Tokenizer.fromJSON({ ...good, model: { ...good.model, type: 'WordPiece' } }), /expected "BPE"/);
  assert.throws(() => Tokenizer.fromJSON({ ...good, pre_tokenizer: { type: 'Whitespace' } }), /not ByteLevel/);
  assert.throws(() => Tokenizer.fromJSON({ ...good, added_tokens: good.added_tokens.filter((a) => a.content !== '<eos>') }), TokenizerFormatError);
  assert.throws(() => Tokenizer.fromJSON({ ...good, model: { ...good.model, merges: ['Ġ zzz'] } }), /missing from the vocab/);
});

test('training is deterministic and respects --vocab', () => {
  const a = Tokenizer.train(fixtureCorpus(), { vocabSize: 350, imageCodes: 0 });
  const b = Tokenizer.train(fixtureCorpus().reverse(), { vocabSize: 350, imageCodes: 0 });
  assert.deepEqual(a.toJSON(), b.toJSON(), 'input order does not change the result');
  assert.equal(a.textVocabSize, 350);
  assert.throws(() => Tokenizer.train([], { vocabSize: 100 }), /at least 266/);
});

test('merges match a naive re-scan BPE on a small corpus', () => {
  // The incremental trainer must pick the same merges as recounting all pairs each time.
  const corpus = ['low lower lowest newer wider new low', 'newest widest low slow slower', ...fixtureCorpus()];
  const trainer = new BpeTrainer();
  for (const c of corpus) trainer.feed(c);
  const fast = trainer.train({ tokens: 256 + 80, minFrequency: 2 });
  const words = new Map<string, number>();
  for (const c of corpus) for (const w of preTokenize(c)) words.set(w, (words.get(w) ?? 0) + 1);
  let seqs = [...words.entries()].sort((x, y) => (x[0] < y[0] ? -1 : 1)).map(([w, f]) => ({ s: Array.from(new TextEncoder().encode(w)), f }));
  const tokens = BYTE_TO_CHAR.slice();
  const naive: Array<[number, number]> = [];
  while (naive.length < 80) {
    const counts = new Map<string, number>();
    for (const { s, f } of seqs) for (let i = 0; i + 1 < s.length; i++) counts.set(`${s[i]},${s[i + 1]}`, (counts.get(`${s[i]},${s[i + 1]}`) ?? 0) + f);
    let best: [number, number] | undefined;
    let bestCount = 1;
    for (const [k, c] of counts) {
      const [x, y] = k.split(',').map(Number) as [number, number];
      const key = x * 2 ** 21 + y;
      if (c > bestCount || (c === bestCount && best !== undefined && key < best[0] * 2 ** 21 + best[1])) {
        best = [x, y];
        bestCount = c;
      }
    }
    if (best === undefined) break;
    const id = tokens.length;
    tokens.push(tokens[best[0]]! + tokens[best[1]]!);
    naive.push(best);
    seqs = seqs.map(({ s, f }) => {
      const out: number[] = [];
      for (let i = 0; i < s.length; i++) {
        if (i + 1 < s.length && s[i] === best![0] && s[i + 1] === best![1]) {
          out.push(id);
          i++;
        } else out.push(s[i]!);
      }
      return { s: out, f };
    });
  }
  assert.equal(naive.length, 80);
  assert.deepEqual(fast.merges, naive);
});

test('training on 10 MB of text takes well under a minute', () => {
  const rng = new Rng(11);
  const syllables = ['ka', 'lo', 'mi', 'ster', 'pro', 'ven', 'dra', 'qui', 'tel', 'son', 'ar', 'bel', 'cor', 'dex', 'fin', 'gal', '红', '色', 'é'];
  const vocab = Array.from({ length: 40000 }, () => Array.from({ length: 1 + rng.int(4) }, () => rng.pick(syllables)).join(''));
  const lines: string[] = [];
  let bytes = 0;
  while (bytes < 10e6) {
    const parts: string[] = [];
    const n = 5 + rng.int(15);
    for (let i = 0; i < n; i++) parts.push(rng.bool(0.05) ? String(rng.int(100000)) : vocab[Math.floor(vocab.length * rng.next() ** 3)]!);
    const line = parts.join(' ') + '.';
    lines.push(line);
    bytes += Buffer.byteLength(line) + 1;
  }
  const started = performance.now();
  const tok = Tokenizer.train(lines, { vocabSize: 16000 });
  const seconds = (performance.now() - started) / 1000;
  assert.equal(tok.textVocabSize, 16000);
  assert.ok(seconds < 30, `training took ${seconds.toFixed(1)} s`);
  assert.equal(tok.decode(tok.encode(lines[0]!)), lines[0]);
});
