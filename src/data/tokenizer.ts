// The text tokenizer: byte-level BPE, saved and loaded as a Hugging Face `tokenizer.json`, so the
// same file works in `tokenizers`/transformers.js. One vocabulary serves the whole model:
//
//   [specials: <pad> <bos> <eos> <unk> …] [task tokens] [256 bytes] [merges] [<img_0> … <img_{N-1}>]
//
// The image-code block is reserved for the VQ image tokenizer, so generated images are just more
// tokens from the same output head. decode(encode(s)) === s for every string that is valid Unicode.
import { readFile, writeFile } from 'node:fs/promises';
import { BpeTrainer, type BpeModel } from './bpe.js';
import { BYTE_TO_CHAR, CHAR_TO_BYTE, preTokenize, toByteChars } from './byteLevel.js';
import { InputError } from '../torch/inputError.js';

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
  truncation: null;
  padding: null;
  added_tokens: HfAddedToken[];
  normalizer: null;
  pre_tokenizer: unknown;
  post_processor: null;
  decoder: unknown;
  model: {
    type: string;
    dropout: null;
    unk_token: string | null;
    continuing_subword_prefix: null;
    end_of_word_suffix: null;
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

const decoder = new TextDecoder('utf-8');
const IMAGE_CODE = /^<img_(\d+)>$/;

export class Tokenizer {
  /** id → token string (byte characters for BPE tokens, literal text for special tokens). */
  private readonly idToTokenTable: string[];
  private readonly tokenToIdTable: Map<string, number>;
  /** pair key "a b" (token ids) → [rank, merged id]. */
  private readonly mergeTable: Map<number, [number, number]>;
  private readonly byteIds: Int32Array;
  private readonly special: Set<number>;
  private readonly specialPattern: RegExp | undefined;
  private readonly cache = new Map<string, number[]>();
  readonly imageCodeStart: number;
  readonly imageCodes: number;
  readonly specialTokens: readonly string[];

  private constructor(tokens: string[], merges: Array<[number, number]>, specialTokens: string[], imageCodeStart: number, imageCodes: number) {
    this.idToTokenTable = tokens;
    this.tokenToIdTable = new Map(tokens.map((t, i) => [t, i]));
    this.specialTokens = specialTokens;
    this.special = new Set(specialTokens.map((t) => this.tokenToIdTable.get(t)!));
    this.imageCodeStart = imageCodeStart;
    this.imageCodes = imageCodes;
    for (let k = 0; k < imageCodes; k++) this.special.add(imageCodeStart + k);
    this.byteIds = new Int32Array(256);
    for (let b = 0; b < 256; b++) {
      const id = this.tokenToIdTable.get(BYTE_TO_CHAR[b]!);
      if (id === undefined) throw new TokenizerFormatError(`byte token ${JSON.stringify(BYTE_TO_CHAR[b])} (byte ${b}) is missing from the vocabulary`);
      this.byteIds[b] = id;
    }
    this.mergeTable = new Map();
    merges.forEach(([a, b], rank) => {
      const merged = this.tokenToIdTable.get(tokens[a]! + tokens[b]!);
      if (merged === undefined) throw new TokenizerFormatError(`merge '${tokens[a]} ${tokens[b]}' has no token in the vocabulary`);
      this.mergeTable.set(a * 2 ** 21 + b, [rank, merged]);
    });
    const escaped = [...specialTokens]
      .sort((x, y) => y.length - x.length)
      .map((t) => t.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
    this.specialPattern = escaped.length > 0 ? new RegExp(`(${escaped.join('|')}|<img_\\d+>)`, 'g') : undefined;
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
    const merges = model.merges.map(([a, b]): [number, number] => [a + offset, b + offset]);
    const imageCodes = opts.imageCodes ?? DEFAULT_IMAGE_CODES;
    const imageCodeStart = tokens.length;
    for (let k = 0; k < imageCodes; k++) tokens.push(`<img_${k}>`);
    return new Tokenizer(tokens, merges, specials, imageCodeStart, imageCodes);
  }

  get vocabSize(): number {
    return this.idToTokenTable.length;
  }

  /** Text tokens only (specials, bytes, merges): where the image codes start. */
  get textVocabSize(): number {
    return this.imageCodeStart;
  }

  get padId(): number {
    return this.tokenToIdTable.get('<pad>')!;
  }

  get bosId(): number {
    return this.tokenToIdTable.get('<bos>')!;
  }

  get eosId(): number {
    return this.tokenToIdTable.get('<eos>')!;
  }

  get unkId(): number {
    return this.tokenToIdTable.get('<unk>')!;
  }

  tokenToId(token: string): number | undefined {
    return this.tokenToIdTable.get(token);
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

  private encodeWord(word: string): number[] {
    const cached = this.cache.get(word);
    if (cached !== undefined) return cached;
    const bytes = toByteChars(word);
    let symbols: number[] = new Array<number>(bytes.length);
    for (let i = 0; i < bytes.length; i++) symbols[i] = this.byteIds[CHAR_TO_BYTE.get(bytes[i]!)!]!;
    // Merge the lowest-ranked adjacent pair until none is in the table (GPT-2's loop).
    while (symbols.length > 1) {
      let bestRank = Infinity;
      let bestMerged = -1;
      let bestA = -1;
      let bestB = -1;
      for (let i = 0; i + 1 < symbols.length; i++) {
        const m = this.mergeTable.get(symbols[i]! * 2 ** 21 + symbols[i + 1]!);
        if (m !== undefined && m[0] < bestRank) {
          bestRank = m[0];
          bestMerged = m[1];
          bestA = symbols[i]!;
          bestB = symbols[i + 1]!;
        }
      }
      if (bestMerged < 0) break;
      const next: number[] = [];
      for (let i = 0; i < symbols.length; i++) {
        if (i + 1 < symbols.length && symbols[i] === bestA && symbols[i + 1] === bestB) {
          next.push(bestMerged);
          i++;
        } else {
          next.push(symbols[i]!);
        }
      }
      symbols = next;
    }
    if (this.cache.size > 200_000) this.cache.clear();
    this.cache.set(word, symbols);
    return symbols;
  }

  private encodePlain(text: string, out: number[]): void {
    for (const word of preTokenize(text)) {
      for (const id of this.encodeWord(word)) out.push(id);
    }
  }

  encode(text: string, opts: EncodeOptions = {}): number[] {
    const out: number[] = [];
    if (opts.addBos) out.push(this.bosId);
    if (opts.parseSpecialTokens && this.specialPattern !== undefined) {
      let last = 0;
      for (const m of text.matchAll(this.specialPattern)) {
        const id = this.tokenToIdTable.get(m[0]);
        if (id === undefined || !this.special.has(id)) continue;
        this.encodePlain(text.slice(last, m.index), out);
        out.push(id);
        last = m.index! + m[0].length;
      }
      this.encodePlain(text.slice(last), out);
    } else {
      this.encodePlain(text, out);
    }
    if (opts.addEos) out.push(this.eosId);
    return out;
  }

  /** Text of ids; special tokens are written as themselves unless skipped. */
  decode(ids: ArrayLike<number>, opts: { skipSpecialTokens?: boolean } = {}): string {
    let text = '';
    let bytes: number[] = [];
    const flush = (): void => {
      if (bytes.length > 0) {
        text += decoder.decode(Uint8Array.from(bytes));
        bytes = [];
      }
    };
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      const token = this.idToTokenTable[id];
      if (token === undefined) throw new RangeError(`token id ${id} is outside the vocabulary (size ${this.vocabSize})`);
      if (this.special.has(id)) {
        flush();
        if (!opts.skipSpecialTokens) text += token;
        continue;
      }
      for (const ch of token) bytes.push(CHAR_TO_BYTE.get(ch)!);
    }
    flush();
    return text;
  }

  toJSON(): HfTokenizerJson {
    const added: HfAddedToken[] = [];
    for (const id of [...this.special].sort((a, b) => a - b)) {
      added.push({ id, content: this.idToTokenTable[id]!, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
    }
    const vocab: Record<string, number> = {};
    this.idToTokenTable.forEach((t, i) => {
      vocab[t] = i;
    });
    const merges: string[] = new Array<string>(this.mergeTable.size);
    for (const [key, [rank]] of this.mergeTable) {
      const a = Math.floor(key / 2 ** 21);
      const b = key - a * 2 ** 21;
      merges[rank] = `${this.idToTokenTable[a]} ${this.idToTokenTable[b]}`;
    }
    const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
    return {
      version: '1.0',
      truncation: null,
      padding: null,
      added_tokens: added,
      normalizer: null,
      pre_tokenizer: byteLevel,
      post_processor: null,
      decoder: byteLevel,
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

  static fromJSON(json: unknown, source = 'tokenizer.json'): Tokenizer {
    const j = json as Partial<HfTokenizerJson> | null;
    if (j === null || typeof j !== 'object' || typeof j.model !== 'object' || j.model === null) {
      throw new TokenizerFormatError(`${source}: not a Hugging Face tokenizer.json (no "model" object)`);
    }
    if (j.model.type !== 'BPE') throw new TokenizerFormatError(`${source}: model type is ${JSON.stringify(j.model.type)}, expected "BPE"`);
    if (!JSON.stringify(j.pre_tokenizer ?? null).includes('"ByteLevel"')) {
      throw new TokenizerFormatError(`${source}: pre_tokenizer is not ByteLevel; m6 reads byte-level BPE tokenizers only`);
    }
    const vocab = j.model.vocab ?? {};
    const size = Math.max(-1, ...Object.values(vocab)) + 1;
    const tokens = new Array<string>(size);
    for (const [t, id] of Object.entries(vocab)) tokens[id] = t;
    const specials: string[] = [];
    const imageIds: Array<[number, number]> = [];
    for (const t of j.added_tokens ?? []) {
      if (tokens[t.id] === undefined) tokens[t.id] = t.content;
      else if (tokens[t.id] !== t.content) throw new TokenizerFormatError(`${source}: added token ${t.content} has id ${t.id}, which the vocab gives to ${tokens[t.id]}`);
      const img = IMAGE_CODE.exec(t.content);
      if (img) imageIds.push([Number(img[1]), t.id]);
      else specials.push(t.content);
    }
    for (let i = 0; i < tokens.length; i++) {
      if (tokens[i] === undefined) throw new TokenizerFormatError(`${source}: token id ${i} is missing from the vocab`);
    }
    for (const core of CORE_SPECIAL_TOKENS) {
      if (!specials.includes(core)) throw new TokenizerFormatError(`${source}: special token ${core} is missing from added_tokens`);
    }
    imageIds.sort((a, b) => a[0] - b[0]);
    const imageCodeStart = imageIds.length > 0 ? imageIds[0]![1] : tokens.length;
    imageIds.forEach(([k, id], i) => {
      if (k !== i || id !== imageCodeStart + i) throw new TokenizerFormatError(`${source}: image-code tokens must be <img_0>…<img_N-1> on consecutive ids; <img_${k}> has id ${id}`);
    });
    const index = new Map(tokens.map((t, i) => [t, i]));
    const merges = (j.model.merges ?? []).map((m, rank): [number, number] => {
      const [a, b] = typeof m === 'string' ? (m.split(' ') as [string, string]) : m;
      const ia = index.get(a);
      const ib = index.get(b);
      if (ia === undefined || ib === undefined) throw new TokenizerFormatError(`${source}: merge ${rank} '${a} ${b}' uses a token missing from the vocab`);
      return [ia, ib];
    });
    return new Tokenizer(tokens, merges, specials, imageCodeStart, imageIds.length);
  }

  async save(file: string): Promise<void> {
    await writeFile(file, JSON.stringify(this.toJSON()) + '\n');
  }

  static async load(file: string): Promise<Tokenizer> {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      throw new TokenizerFormatError(`cannot read tokenizer ${file}: ${(err as Error).message}`);
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
