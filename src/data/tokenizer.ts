// The text tokenizer: byte-level BPE, saved and loaded as a Hugging Face `tokenizer.json`, so the
// same file works in `tokenizers`/transformers.js. One vocabulary serves the whole model:
//
//   [specials: <pad> <bos> <eos> <unk> …] [task tokens] [256 bytes] [merges] [<img_0> … <img_{N-1}>]
//
// The image-code block is reserved for the VQ image tokenizer, so generated images are just more
// tokens from the same output head. decode(encode(s)) === s for every string that is valid Unicode.
//
// Any other byte-level BPE tokenizer.json loads too (GPT-2, RoBERTa, Llama-3, Qwen, GPT-4o,
// DeepSeek): its normalizer, pre-tokenizer and added tokens are read and applied as Hugging Face
// `tokenizers` applies them, giving the same ids. Such a file lacks m6's tokens; `withModelTokens`
// appends them as added tokens, and the file is written back as it was read plus those tokens.
import { readFile } from 'node:fs/promises';
import { writeFileAtomic } from '../io/atomicFile.js';
import { AddedTokenMatcher, type AddedToken } from './addedTokens.js';
import { BpeTrainer, type BpeModel } from './bpe.js';
import { ID_LIMIT, MergeTable, mergeWord } from './bpeMerge.js';
import { BYTE_TO_CHAR, CHAR_TO_BYTE, toByteChars } from './byteLevel.js';
import { normalizerFromJson, type Normalizer } from './normalizer.js';
import { preTokenizerFromJson, type PreTokenizer } from './preTokenizer.js';
import { fileReadProblem, InputError } from '../torch/inputError.js';

export type { AddedToken } from './addedTokens.js';

export const CORE_SPECIAL_TOKENS = ['<pad>', '<bos>', '<eos>', '<unk>'] as const;
/** Task markers for the four things M6 does, plus a separator and a mask for infilling objectives. */
export const DEFAULT_TASK_TOKENS = ['<sep>', '<mask>', '<describe>', '<design>', '<answer>', '<embed>'] as const;
export const DEFAULT_IMAGE_CODES = 8192;

export interface TokenizerTrainOptions {
  /** Size of the text vocabulary: specials + task tokens + 256 bytes + merges (image codes come on top). */
  vocabSize: number;
  taskTokens?: readonly string[];
  /** Size of the reserved <img_k> block. */
  imageCodes?: number;
  minFrequency?: number;
}

export interface EncodeOptions {
  addBos?: boolean;
  addEos?: boolean;
  /** Recognise special tokens written in the text ("<eos>"). Off by default: user text stays text. */
  parseSpecialTokens?: boolean;
}

/** Hugging Face tokenizer.json, the parts m6 writes and reads. */
interface HfAddedToken {
  id: number;
  content: string;
  single_word: boolean;
  lstrip: boolean;
  rstrip: boolean;
  normalized: boolean;
  special: boolean;
}

interface HfTokenizerJson {
  version: string;
  truncation: unknown;
  padding: unknown;
  added_tokens: HfAddedToken[];
  normalizer: unknown;
  pre_tokenizer: unknown;
  post_processor: unknown;
  decoder: unknown;
  model: {
    type: string;
    dropout: number | null;
    unk_token: string | null;
    continuing_subword_prefix: string | null;
    end_of_word_suffix: string | null;
    fuse_unk: boolean;
    byte_fallback: boolean;
    ignore_merges?: boolean;
    vocab: Record<string, number>;
    merges: Array<string | [string, string]>;
  };
}

export class TokenizerFormatError extends InputError {
  constructor(message: string) {
    super(message);
    this.name = 'TokenizerFormatError';
  }
}

export interface ModelTokenOptions {
  taskTokens?: readonly string[];
  /** Size of the <img_k> block to append when the tokenizer has none. */
  imageCodes: number;
}

const decoder = new TextDecoder('utf-8');
const encoder = new TextEncoder();
const IMAGE_CODE = /^<img_(\d+)>$/;
const BYTE_LEVEL = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };

/** Everything a Tokenizer is built from. */
interface TokenizerParts {
  /** id → token (byte characters for BPE tokens, literal text for added ones); holes are ids no token has. */
  tokens: Array<string | undefined>;
  /** The model's own vocabulary (BPE's lookups), without tokens that are only in added_tokens. */
  vocab: ReadonlyMap<string, number>;
  /** Merges in rank order as token-id pairs, flat: [a0, b0, a1, b1, …] (no 150k small arrays to collect). */
  merges: Int32Array;
  added: AddedToken[];
  imageCodeStart: number;
  imageCodes: number;
  normalizer?: Normalizer | undefined;
  preTokenizer?: PreTokenizer | undefined;
  ignoreMerges?: boolean;
  /** The file this came from, written back as read (plus appended added tokens) by toJSON. */
  file?: HfTokenizerJson | undefined;
}

function hfAdded(t: AddedToken): HfAddedToken {
  return { id: t.id, content: t.content, single_word: t.singleWord, lstrip: t.lstrip, rstrip: t.rstrip, normalized: t.normalized, special: t.special };
}

function m6Special(id: number, content: string): AddedToken {
  return { id, content, special: true, singleWord: false, lstrip: false, rstrip: false, normalized: false };
}

export class Tokenizer {
  private readonly idToTokenTable: Array<string | undefined>;
  private readonly vocab: ReadonlyMap<string, number>;
  private readonly addedIndex: Map<string, number>;
  private readonly added: readonly AddedToken[];
  private readonly merges: Int32Array;
  private readonly mergeTable: MergeTable;
  private readonly byteIds: Int32Array;
  private readonly special: Set<number>;
  private readonly rawMatcher: AddedTokenMatcher;
  private readonly normalizedMatcher: AddedTokenMatcher;
  private readonly normalizer: Normalizer | undefined;
  private readonly preTokenizer: PreTokenizer;
  private readonly ignoreMerges: boolean;
  private readonly file: HfTokenizerJson | undefined;
  private readonly cache = new Map<string, number[]>();
  /** UTF-8 bytes of each token as decode writes them, filled on first use. */
  private readonly bytesOf: Array<Uint8Array | undefined> = [];
  readonly imageCodeStart: number;
  readonly imageCodes: number;
  /** Special added tokens other than the image codes, in id order. */
  readonly specialTokens: readonly string[];

  private constructor(p: TokenizerParts) {
    this.idToTokenTable = p.tokens;
    this.vocab = p.vocab;
    this.added = p.added;
    this.addedIndex = new Map(p.added.map((t) => [t.content, t.id]));
    this.imageCodeStart = p.imageCodeStart;
    this.imageCodes = p.imageCodes;
    this.normalizer = p.normalizer;
    this.preTokenizer = p.preTokenizer ?? preTokenizerFromJson(BYTE_LEVEL);
    this.ignoreMerges = p.ignoreMerges ?? false;
    this.file = p.file;
    const isImage = (id: number): boolean => id >= p.imageCodeStart && id < p.imageCodeStart + p.imageCodes;
    this.special = new Set(p.added.filter((t) => t.special).map((t) => t.id));
    this.specialTokens = p.added.filter((t) => t.special && !isImage(t.id)).map((t) => t.content);
    const images = { start: p.imageCodeStart, count: p.imageCodes };
    const text = p.added.filter((t) => !isImage(t.id));
    this.rawMatcher = new AddedTokenMatcher(text.filter((t) => !t.normalized), images);
    // Normalized added tokens are looked for in normalized text, so their content is normalized too.
    const norm = p.normalizer ?? ((s: string): string => s);
    this.normalizedMatcher = new AddedTokenMatcher(text.filter((t) => t.normalized).map((t) => ({ ...t, content: norm(t.content) })));
    this.byteIds = new Int32Array(256);
    for (let b = 0; b < 256; b++) {
      const id = p.vocab.get(BYTE_TO_CHAR[b]!);
      if (id === undefined) throw new TokenizerFormatError(`byte token ${JSON.stringify(BYTE_TO_CHAR[b])} (byte ${b}) is missing from the vocabulary`);
      this.byteIds[b] = id;
    }
    this.merges = p.merges;
    const count = p.merges.length / 2;
    this.mergeTable = new MergeTable(count);
    const tokens = p.tokens;
    for (let rank = 0; rank < count; rank++) {
      const a = p.merges[2 * rank]!;
      const b = p.merges[2 * rank + 1]!;
      const merged = p.vocab.get(tokens[a]! + tokens[b]!);
      if (merged === undefined) throw new TokenizerFormatError(`merge '${tokens[a]} ${tokens[b]}' has no token in the vocabulary`);
      this.mergeTable.set(a, b, rank, merged);
    }
  }

  /** Train on texts (an array, or any iterable of lines/documents). */
  static train(texts: Iterable<string>, opts: TokenizerTrainOptions): Tokenizer {
    const trainer = new BpeTrainer();
    for (const t of texts) trainer.feed(t);
    return Tokenizer.fromTrainer(trainer, opts);
  }

  static fromTrainer(trainer: BpeTrainer, opts: TokenizerTrainOptions): Tokenizer {
    const specials = [...CORE_SPECIAL_TOKENS, ...(opts.taskTokens ?? DEFAULT_TASK_TOKENS)];
    if (new Set(specials).size !== specials.length) throw new RangeError(`special tokens must be distinct: ${specials.join(' ')}`);
    const learned = opts.vocabSize - specials.length;
    if (learned < 256) throw new RangeError(`--vocab must be at least ${specials.length + 256} (${specials.length} special tokens + 256 bytes), got ${opts.vocabSize}`);
    const model: BpeModel = trainer.train({ tokens: learned, minFrequency: opts.minFrequency ?? 2 });
    const tokens = [...specials, ...model.tokens];
    const offset = specials.length;
    const merges = Int32Array.from(model.merges.flat(), (id) => id + offset);
    const imageCodes = opts.imageCodes ?? DEFAULT_IMAGE_CODES;
    const imageCodeStart = tokens.length;
    for (let k = 0; k < imageCodes; k++) tokens.push(`<img_${k}>`);
    const added = specials.map((t, i) => m6Special(i, t));
    for (let k = 0; k < imageCodes; k++) added.push(m6Special(imageCodeStart + k, tokens[imageCodeStart + k]!));
    return new Tokenizer({ tokens, vocab: new Map(tokens.map((t, i) => [t, i])), merges, added, imageCodeStart, imageCodes });
  }

  get vocabSize(): number {
    return this.idToTokenTable.length;
  }

  /** Text tokens only (specials, bytes, merges): where the image codes start. */
  get textVocabSize(): number {
    return this.imageCodeStart;
  }

  /** Whether the tokenizer has what an M6 model needs: m6's core special tokens (withModelTokens adds them). */
  get hasModelTokens(): boolean {
    return CORE_SPECIAL_TOKENS.every((t) => this.special.has(this.addedIndex.get(t) ?? -1));
  }

  private coreId(token: (typeof CORE_SPECIAL_TOKENS)[number]): number {
    const id = this.addedIndex.get(token);
    if (id === undefined || !this.special.has(id)) {
      throw new TokenizerFormatError(`this tokenizer has no ${token} token (it is not one of m6's): add m6's tokens with tokenizer.withModelTokens(), as \`m6 train --tokenizer\` does`);
    }
    return id;
  }

  get padId(): number {
    return this.coreId('<pad>');
  }

  get bosId(): number {
    return this.coreId('<bos>');
  }

  get eosId(): number {
    return this.coreId('<eos>');
  }

  get unkId(): number {
    return this.coreId('<unk>');
  }

  tokenToId(token: string): number | undefined {
    return this.addedIndex.get(token) ?? this.vocab.get(token);
  }

  idToToken(id: number): string | undefined {
    return this.idToTokenTable[id];
  }

  isSpecial(id: number): boolean {
    return this.special.has(id);
  }

  imageCodeId(code: number): number {
    if (!Number.isInteger(code) || code < 0 || code >= this.imageCodes) throw new RangeError(`image code ${code} out of range [0, ${this.imageCodes})`);
    return this.imageCodeStart + code;
  }

  /** The image code of a token id, or undefined for a text token. */
  imageCodeOf(id: number): number | undefined {
    const k = id - this.imageCodeStart;
    return k >= 0 && k < this.imageCodes ? k : undefined;
  }

  /**
   * This tokenizer plus what an M6 model needs that it lacks: the core specials and task tokens,
   * then an image-code block when it has none. New tokens take ids after the last one, as
   * special added tokens; a token the vocabulary already has as text keeps its id and becomes special.
   */
  withModelTokens(opts: ModelTokenOptions): Tokenizer {
    const tokens = this.idToTokenTable.slice();
    const added = this.added.map((t) => ({ ...t }));
    const want = [...CORE_SPECIAL_TOKENS, ...(opts.taskTokens ?? DEFAULT_TASK_TOKENS)];
    for (const content of want) {
      const existing = added.find((t) => t.content === content);
      if (existing !== undefined) existing.special = true;
      else {
        const id = this.vocab.get(content) ?? tokens.length;
        tokens[id] = content;
        added.push(m6Special(id, content));
      }
    }
    let imageCodeStart = this.imageCodeStart;
    let imageCodes = this.imageCodes;
    if (imageCodes === 0 && opts.imageCodes > 0) {
      imageCodeStart = tokens.length;
      imageCodes = opts.imageCodes;
      for (let k = 0; k < imageCodes; k++) {
        tokens.push(`<img_${k}>`);
        added.push(m6Special(imageCodeStart + k, `<img_${k}>`));
      }
    } else if (imageCodes === 0) imageCodeStart = tokens.length;
    added.sort((a, b) => a.id - b.id);
    return new Tokenizer({
      tokens, vocab: this.vocab, merges: this.merges, added, imageCodeStart, imageCodes,
      normalizer: this.normalizer, preTokenizer: this.preTokenizer, ignoreMerges: this.ignoreMerges, file: this.file,
    });
  }

  private encodeWord(word: string): number[] {
    const cached = this.cache.get(word);
    if (cached !== undefined) return cached;
    let ids: number[] | undefined;
    // ignore_merges (Llama-3): a word the vocabulary has whole is that token, whatever the merges say.
    const whole = this.ignoreMerges ? this.vocab.get(toByteChars(word)) : undefined;
    if (whole !== undefined) ids = [whole];
    else {
      const utf8 = encoder.encode(word);
      const symbols = new Array<number>(utf8.length);
      for (let i = 0; i < utf8.length; i++) symbols[i] = this.byteIds[utf8[i]!]!;
      ids = mergeWord(symbols, this.mergeTable);
    }
    if (this.cache.size > 200_000) this.cache.clear();
    this.cache.set(word, ids);
    return ids;
  }

  private encodeWords(text: string, out: number[]): void {
    for (const word of this.preTokenizer(text)) {
      for (const id of this.encodeWord(word)) out.push(id);
    }
  }

  encode(text: string, opts: EncodeOptions = {}): number[] {
    const out: number[] = [];
    if (opts.addBos) out.push(this.bosId);
    const special = opts.parseSpecialTokens === true;
    const push = (id: number): void => {
      out.push(id);
    };
    // Added tokens first (those matched as written, then normalized ones in the normalized rest),
    // then pre-tokenize and merge what is left: the order of tokenizers' encode.
    this.rawMatcher.scan(text, special, (piece) => {
      const normalized = this.normalizer === undefined ? piece : this.normalizer(piece);
      this.normalizedMatcher.scan(normalized, special, (rest) => this.encodeWords(rest, out), push);
    }, push);
    if (opts.addEos) out.push(this.eosId);
    return out;
  }

  private tokenBytes(id: number, token: string): Uint8Array {
    let bytes = this.bytesOf[id];
    if (bytes === undefined) {
      // tokenizers' ByteLevel decoder: a token made only of byte characters is those bytes; any
      // other (an added token such as DeepSeek's <｜begin▁of▁sentence｜>) is its own UTF-8.
      const chars = [...token];
      const mapped = chars.map((c) => CHAR_TO_BYTE.get(c));
      bytes = mapped.every((b) => b !== undefined) ? Uint8Array.from(mapped as number[]) : encoder.encode(token);
      this.bytesOf[id] = bytes;
    }
    return bytes;
  }

  /** Text of ids; special tokens are written as themselves unless skipped. */
  decode(ids: ArrayLike<number>, opts: { skipSpecialTokens?: boolean } = {}): string {
    const parts: Uint8Array[] = [];
    let length = 0;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) throw new RangeError(`token id ${id} is outside the vocabulary (size ${this.vocabSize})`);
      const token = this.idToTokenTable[id];
      // An id no token has (GPT-4o's vocabulary has holes) decodes to nothing, as in tokenizers.
      if (token === undefined || (opts.skipSpecialTokens && this.special.has(id))) continue;
      const b = this.tokenBytes(id, token);
      parts.push(b);
      length += b.length;
    }
    const all = new Uint8Array(length);
    let at = 0;
    for (const b of parts) {
      all.set(b, at);
      at += b.length;
    }
    return decoder.decode(all);
  }

  toJSON(): HfTokenizerJson {
    const added = this.added.map(hfAdded);
    if (this.file !== undefined) return { ...this.file, added_tokens: added };
    const vocab: Record<string, number> = {};
    this.idToTokenTable.forEach((t, i) => {
      if (t !== undefined) vocab[t] = i;
    });
    const merges = new Array<string>(this.merges.length / 2);
    for (let r = 0; r < merges.length; r++) merges[r] = `${this.idToTokenTable[this.merges[2 * r]!]} ${this.idToTokenTable[this.merges[2 * r + 1]!]}`;
    return {
      version: '1.0',
      truncation: null,
      padding: null,
      added_tokens: added,
      normalizer: null,
      pre_tokenizer: BYTE_LEVEL,
      post_processor: null,
      decoder: BYTE_LEVEL,
      model: {
        type: 'BPE',
        dropout: null,
        unk_token: null,
        continuing_subword_prefix: null,
        end_of_word_suffix: null,
        fuse_unk: false,
        byte_fallback: false,
        ignore_merges: false,
        vocab,
        merges,
      },
    };
  }

  /**
   * A tokenizer from a parsed tokenizer.json; `source` names it in errors. The object is kept (not
   * copied) to be written back by toJSON, so it must not be changed afterwards.
   */
  static fromJSON(json: unknown, source = 'tokenizer.json'): Tokenizer {
    const fail = (what: string): never => {
      throw new TokenizerFormatError(`${source}: ${what}`);
    };
    const j = json as Partial<HfTokenizerJson> | null;
    if (j === null || typeof j !== 'object' || typeof j.model !== 'object' || j.model === null) {
      return fail('not a Hugging Face tokenizer.json (no "model" object)');
    }
    const model = j.model;
    if (model.type !== 'BPE') fail(`model type is ${JSON.stringify(model.type)}, expected "BPE"`);
    if (typeof model.dropout === 'number' && model.dropout > 0) fail(`BPE dropout ${model.dropout} is not supported (m6 encodes deterministically)`);
    for (const field of ['continuing_subword_prefix', 'end_of_word_suffix'] as const) {
      if (typeof model[field] === 'string' && model[field] !== '') fail(`BPE ${field} ${JSON.stringify(model[field])} is not supported by byte-level BPE`);
    }
    let normalizer: Normalizer | undefined;
    let preTokenizer: PreTokenizer;
    try {
      normalizer = normalizerFromJson(j.normalizer);
      preTokenizer = preTokenizerFromJson(j.pre_tokenizer ?? null);
    } catch (err) {
      return fail((err as Error).message);
    }
    const decoderType = (j.decoder as { type?: unknown } | null | undefined)?.type;
    if (decoderType !== 'ByteLevel') fail(`decoder ${JSON.stringify(decoderType ?? null)} is not ByteLevel; m6 reads byte-level BPE tokenizers only`);

    // Ids may have holes and run past the vocab (added tokens): size the table by the largest id,
    // found with a loop (spreading 150k ids into Math.max overflows the stack).
    const vocabObject = model.vocab ?? {};
    const vocab = new Map<string, number>();
    let size = 0;
    for (const t of Object.keys(vocabObject)) {
      const id = vocabObject[t]!;
      if (!Number.isInteger(id) || id < 0 || id >= ID_LIMIT) fail(`vocab token ${JSON.stringify(t)} has id ${id}, expected an integer in [0, ${ID_LIMIT})`);
      vocab.set(t, id);
      if (id >= size) size = id + 1;
    }
    const addedJson = j.added_tokens ?? [];
    for (const t of addedJson) {
      if (!Number.isInteger(t.id) || t.id < 0 || t.id >= ID_LIMIT || typeof t.content !== 'string') fail(`added token ${JSON.stringify(t)} needs an integer id in [0, ${ID_LIMIT}) and a string content`);
      if (t.id >= size) size = t.id + 1;
    }
    const tokens = new Array<string | undefined>(size);
    for (const [t, id] of vocab) tokens[id] = t;
    const added: AddedToken[] = [];
    const imageIds: Array<[number, number]> = [];
    for (const t of addedJson) {
      // tokenizers' defaults for fields a file leaves out.
      const normalized = t.normalized ?? !(t.special ?? false);
      const inVocab = vocab.get(t.content);
      if (inVocab !== undefined && inVocab !== t.id) fail(`added token ${t.content} has id ${t.id}, but the vocab has it as id ${inVocab}`);
      // tokenizers keeps a normalized added token as its normalized text, which is what decode writes.
      if (tokens[t.id] === undefined) tokens[t.id] = normalized && normalizer !== undefined ? normalizer(t.content) : t.content;
      else if (tokens[t.id] !== t.content) fail(`added token ${t.content} has id ${t.id}, which the vocab gives to ${tokens[t.id]}`);
      added.push({ id: t.id, content: t.content, special: t.special ?? false, singleWord: t.single_word ?? false, lstrip: t.lstrip ?? false, rstrip: t.rstrip ?? false, normalized });
      const img = IMAGE_CODE.exec(t.content);
      if (img && t.special) imageIds.push([Number(img[1]), t.id]);
    }
    added.sort((a, b) => a.id - b.id);
    // m6's own files carry all four core specials; one with some of them but another one as plain
    // vocabulary text is damaged (that token would be split into bytes).
    const specialContents = new Set(added.filter((t) => t.special).map((t) => t.content));
    if (CORE_SPECIAL_TOKENS.some((t) => specialContents.has(t))) {
      for (const core of CORE_SPECIAL_TOKENS) if (!specialContents.has(core)) fail(`special token ${core} is missing from added_tokens`);
    }
    imageIds.sort((a, b) => a[0] - b[0]);
    const imageCodeStart = imageIds.length > 0 ? imageIds[0]![1] : size;
    imageIds.forEach(([k, id], i) => {
      if (k !== i || id !== imageCodeStart + i) fail(`image-code tokens must be <img_0>…<img_N-1> on consecutive ids; <img_${k}> has id ${id}`);
    });
    const list = model.merges ?? [];
    const merges = new Int32Array(2 * list.length);
    list.forEach((m, rank) => {
      // Older files write "a b", newer ones ["a", "b"].
      let a: string;
      let b: string;
      if (typeof m === 'string') {
        const space = m.indexOf(' ');
        a = m.slice(0, space);
        b = m.slice(space + 1);
      } else [a, b] = m;
      const ia = vocab.get(a);
      const ib = vocab.get(b);
      if (ia === undefined || ib === undefined) fail(`merge ${rank} '${a} ${b}' uses a token missing from the vocab`);
      merges[2 * rank] = ia!;
      merges[2 * rank + 1] = ib!;
    });
    try {
      return new Tokenizer({
        tokens, vocab, merges, added, imageCodeStart, imageCodes: imageIds.length,
        normalizer, preTokenizer, ignoreMerges: model.ignore_merges === true, file: j as HfTokenizerJson,
      });
    } catch (err) {
      if (err instanceof TokenizerFormatError) fail(err.message);
      throw err;
    }
  }

  /** Writes tokenizer.json atomically: a crash never leaves half of one where a run reads it. */
  async save(file: string): Promise<void> {
    writeFileAtomic(file, JSON.stringify(this.toJSON()) + '\n');
  }

  static async load(file: string): Promise<Tokenizer> {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      throw new TokenizerFormatError(`tokenizer ${file} ${fileReadProblem(err)}`);
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (err) {
      throw new TokenizerFormatError(`${file} is not JSON: ${(err as Error).message}`);
    }
    return Tokenizer.fromJSON(json, file);
  }
}
