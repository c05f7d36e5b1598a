// What the model reads for design: the task's instruction, then the prompt (OFA's
// " what is the complete image? caption: {caption}"). Training, `m6 design` and the design
// evaluation all build the source here, so the three never drift apart.
//
// The training prompt of a row is its caption: the first text column (the synthetic catalog's
// title, e.g. "Red Polka-Dot Dress": short, like what a shopper types, and naming what the image
// shows); the description that follows it is too long and mostly repeats the title. An image-folder
// row, which has no text, is prompted by its label.
import type { DataRow } from '../data/manifest.js';
import type { Tokenizer } from '../data/tokenizer.js';
import { TASKS } from './instructions.js';

/** The source text of a design prompt. */
export function designSource(prompt: string): string {
  return `${TASKS.design.instruction} ${prompt.trim()}`;
}

/** The source of a design row whose prompt is dropped (M6Config.designPromptDropout): the instruction
 * alone, what classifier-free guidance contrasts the prompt with. */
export function unconditionalDesignSource(): string {
  return TASKS.design.instruction;
}

/** The encoded unconditional source (tokens then <eos>), as the loader encodes a dropped prompt. */
export function encodeUnconditionalDesign(tokenizer: Tokenizer): number[] {
  return [...tokenizer.encode(unconditionalDesignSource()), tokenizer.eosId];
}

/** A row's design prompt (its caption, else its label), or undefined when it has neither. */
export function designPromptOf(row: DataRow): string | undefined {
  const prompt = (row.caption ?? row.label)?.trim();
  return prompt ? prompt : undefined;
}

/** The encoded source of a prompt (tokens then <eos>), or why it cannot be used. Never truncated: a cut prompt asks for something else. */
export function encodeDesignPrompt(tokenizer: Tokenizer, prompt: string, maxTextLen: number): { ids: number[] } | { error: string } {
  if (prompt.trim() === '') return { error: 'empty prompt: say what to design, e.g. "red polka-dot dress"' };
  const ids = [...tokenizer.encode(designSource(prompt)), tokenizer.eosId];
  if (ids.length > maxTextLen) {
    const instruction = tokenizer.encode(designSource('')).length + 1;
    return { error: `prompt too long: ${ids.length - instruction} tokens, at most ${maxTextLen - instruction} fit the model's ${maxTextLen} source positions` };
  }
  return { ids };
}
