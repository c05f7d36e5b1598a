// Added tokens (tokenizer.json's `added_tokens`): strings cut out of the text whole before any
// normalizing or BPE, as Hugging Face's AddedVocabulary does: leftmost-longest match, then the
// token's own options — `single_word` (no word character may touch it), `lstrip`/`rstrip` (it
// swallows the whitespace beside it). Special tokens are matched only when the caller asks
// (m6 keeps user text as text); the others, like Qwen's <think>, are vocabulary and always match.
import { WHITESPACE_CLASS_BODY } from './onigPattern.js';

export interface AddedToken {
  id: number;
  content: string;
  /** Skipped by decode({ skipSpecialTokens }), matched in text only with parseSpecialTokens. */
  special: boolean;
  singleWord: boolean;
  lstrip: boolean;
  rstrip: boolean;
  /** Matched in the normalized text (true) or in the text as given (false). */
  normalized: boolean;
}

// Rust regex's \w and \s, which tokenizers uses for these checks.
const WORD_CHAR = /[\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\p{Join_Control}]/u;
const SPACES_AT_END = new RegExp(`[${WHITESPACE_CLASS_BODY}]*$`, 'u');
const SPACES_AT_START = new RegExp(`^[${WHITESPACE_CLASS_BODY}]*`, 'u');

function lastChar(s: string, end: number): string {
  const c = s.codePointAt(end - 1)!;
  // end - 1 may be the low half of a surrogate pair.
  if (end >= 2 && c >= 0xdc00 && c <= 0xdfff) return String.fromCodePoint(s.codePointAt(end - 2)!);
  return String.fromCodePoint(c);
}

/** An image-code block <img_0>…<img_{count-1}> matched by shape rather than one entry per code. */
export interface ImageCodeBlock {
  start: number;
  count: number;
}

const IMAGE_CODE_AT = /<img_(\d+)>/y;

export class AddedTokenMatcher {
  /** Tokens by their first UTF-16 unit, longest first. */
  private readonly byFirst = new Map<string, AddedToken[]>();

  constructor(tokens: readonly AddedToken[], private readonly images: ImageCodeBlock = { start: 0, count: 0 }) {
    for (const t of tokens) {
      if (t.content.length === 0) continue;
      const list = this.byFirst.get(t.content[0]!);
      if (list === undefined) this.byFirst.set(t.content[0]!, [t]);
      else list.push(t);
    }
    for (const list of this.byFirst.values()) list.sort((a, b) => b.content.length - a.content.length);
  }

  get empty(): boolean {
    return this.byFirst.size === 0 && this.images.count === 0;
  }

  /** The longest eligible token at `i`: [the entry (undefined for an image code), its id (-1: none), its end]. */
  private longestAt(text: string, i: number, special: boolean): [AddedToken | undefined, number, number] {
    let best: AddedToken | undefined;
    let bestId = -1;
    let bestEnd = -1;
    for (const t of this.byFirst.get(text[i]!) ?? []) {
      if ((special || !t.special) && text.startsWith(t.content, i)) {
        best = t;
        bestId = t.id;
        bestEnd = i + t.content.length;
        break;
      }
    }
    if (special && this.images.count > 0 && text[i] === '<') {
      IMAGE_CODE_AT.lastIndex = i;
      const m = IMAGE_CODE_AT.exec(text);
      if (m !== null && i + m[0].length > bestEnd && Number(m[1]) < this.images.count && String(Number(m[1])) === m[1]) {
        best = undefined;
        bestId = this.images.start + Number(m[1]);
        bestEnd = i + m[0].length;
      }
    }
    return [best, bestId, bestEnd];
  }

  /**
   * Walk `text`: `onText` gets each stretch between tokens (never empty), `onToken` each token id,
   * in order. `special`: whether special tokens count.
   */
  scan(text: string, special: boolean, onText: (s: string) => void, onToken: (id: number) => void): void {
    if (this.empty) {
      if (text.length > 0) onText(text);
      return;
    }
    let done = 0; // end of the last token taken
    let i = 0;
    while (i < text.length) {
      const [token, id, end] = this.longestAt(text, i, special);
      if (id < 0) {
        i++;
        continue;
      }
      let start = i;
      let stop = end;
      i = end;
      if (token?.singleWord === true) {
        if ((start > 0 && WORD_CHAR.test(lastChar(text, start))) || (stop < text.length && WORD_CHAR.test(String.fromCodePoint(text.codePointAt(stop)!)))) continue;
      }
      if (token?.lstrip === true) start = Math.max(done, SPACES_AT_END.exec(text.slice(done, start))!.index + done);
      if (token?.rstrip === true) {
        stop += SPACES_AT_START.exec(text.slice(stop))![0].length;
        i = stop;
      }
      if (start > done) onText(text.slice(done, start));
      onToken(id);
      done = stop;
    }
    if (done < text.length) onText(text.slice(done));
  }
}
