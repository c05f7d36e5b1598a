// GPT-2's byte-level alphabet, as Hugging Face's ByteLevel pre-tokenizer and decoder use it: each
// of the 256 bytes maps to one printable character (space → 'Ġ', newline → 'Ċ'), so any UTF-8
// text becomes a string of "byte characters" and BPE never needs an unknown token.
import { onigRegExp } from './onigPattern.js';

function buildByteToChar(): string[] {
  const printable: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) printable.push(b);
  for (let b = 0xa1; b <= 0xac; b++) printable.push(b);
  for (let b = 0xae; b <= 0xff; b++) printable.push(b);
  const table = new Array<string>(256);
  const kept = new Set(printable);
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    table[b] = String.fromCharCode(kept.has(b) ? b : 256 + extra++);
  }
  return table;
}

/** BYTE_TO_CHAR[b] is the character standing for byte b. */
export const BYTE_TO_CHAR: readonly string[] = buildByteToChar();

export const CHAR_TO_BYTE: ReadonlyMap<string, number> = new Map(BYTE_TO_CHAR.map((c, b) => [c, b]));

/**
 * GPT-2's pre-tokenizer pattern (Hugging Face ByteLevel with use_regex): contractions, letters
 * with an optional leading space, numbers, punctuation runs, whitespace. Every character of any
 * string is matched by one alternative, which is what makes decode(encode(s)) === s exact.
 * Written as tokenizers has it, in Oniguruma's dialect: its \s is not JavaScript's (NEL, BOM).
 */
export const PRETOKENIZE_SOURCE = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
export const PRETOKENIZE_PATTERN = onigRegExp(PRETOKENIZE_SOURCE);

export function preTokenize(text: string): string[] {
  return text.match(PRETOKENIZE_PATTERN) ?? [];
}

const encoder = new TextEncoder();

/** UTF-8 bytes of `text`, as byte characters. */
export function toByteChars(text: string): string {
  const bytes = encoder.encode(text);
  let out = '';
  for (let i = 0; i < bytes.length; i++) out += BYTE_TO_CHAR[bytes[i]!];
  return out;
}
