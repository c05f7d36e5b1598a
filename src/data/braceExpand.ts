// Shell-style brace expansion for shard lists, as WebDataset (Python's braceexpand) reads them:
// `data/{000000..000127}.tar` is 128 paths, zero-padded to the width written; `{a,b}` is a list;
// several braces multiply. Errors say what in the pattern was wrong; they never guess.

/** More paths than any shard list holds: a typo such as `{0..99999999}` is refused, not expanded. */
const MAX_EXPANSION = 1_000_000;

export class BraceError extends Error {
  constructor(readonly pattern: string, detail: string) {
    super(`'${pattern}': ${detail}`);
    this.name = 'BraceError';
  }
}

/** Splits a comma-separated list at the commas outside braces (a `{a,b}` list stays whole). */
export function splitOutsideBraces(text: string): string[] {
  const parts: string[] = [];
  let depth = 0, start = 0;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === '{') depth++;
    else if (ch === '}') depth = Math.max(0, depth - 1);
    else if (ch === ',' && depth === 0) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(text.slice(start));
  return parts.map((p) => p.trim()).filter((p) => p.length > 0);
}

/** `{first..last}` → the numbers between, inclusive, zero-padded when `first` is written with leading zeros. */
function expandRange(pattern: string, body: string): string[] | undefined {
  const m = /^(-?\d+)\.\.(-?\d+)$/.exec(body);
  if (m === null) return undefined;
  const [a, b] = [Number(m[1]), Number(m[2])];
  if (a > b) throw new BraceError(pattern, `range {${body}} runs backwards: write {${m[2]}..${m[1]}}`);
  if (b - a + 1 > MAX_EXPANSION) throw new BraceError(pattern, `range {${body}} names ${b - a + 1} shards, more than ${MAX_EXPANSION}`);
  const width = /^-?0\d/.test(m[1]!) ? m[1]!.replace('-', '').length : 0;
  return Array.from({ length: b - a + 1 }, (_v, i) => String(a + i).padStart(width, '0'));
}

/** The alternatives of one brace body: a numeric range or a comma list (each alternative may hold braces). */
function alternatives(pattern: string, body: string): string[] {
  const range = expandRange(pattern, body);
  if (range !== undefined) return range;
  if (/^[^,{}]*\.\.[^,{}]*$/.test(body)) throw new BraceError(pattern, `{${body}} is not a range of integers like {000000..000127}`);
  const parts = splitOutsideBraces(`${body}`);
  if (!body.includes(',') || parts.length === 0) throw new BraceError(pattern, `{${body}} is neither a range {first..last} nor a list {a,b}`);
  return parts.flatMap((p) => braceExpand(p));
}

/** Every path a brace pattern names, in order; a pattern without braces is itself. */
export function braceExpand(pattern: string): string[] {
  const open = pattern.indexOf('{');
  const stray = pattern.indexOf('}');
  if (open < 0) {
    if (stray >= 0) throw new BraceError(pattern, `'}' at ${stray + 1} has no '{'`);
    return [pattern];
  }
  if (stray >= 0 && stray < open) throw new BraceError(pattern, `'}' at ${stray + 1} has no '{'`);
  let depth = 0, close = -1;
  for (let i = open; i < pattern.length && close < 0; i++) {
    if (pattern[i] === '{') depth++;
    else if (pattern[i] === '}' && --depth === 0) close = i;
  }
  if (close < 0) throw new BraceError(pattern, `'{' at ${open + 1} is never closed`);
  const head = pattern.slice(0, open), body = pattern.slice(open + 1, close);
  const tails = braceExpand(pattern.slice(close + 1));
  const out: string[] = [];
  for (const alt of alternatives(pattern, body)) {
    for (const tail of tails) {
      out.push(head + alt + tail);
      if (out.length > MAX_EXPANSION) throw new BraceError(pattern, `names more than ${MAX_EXPANSION} shards`);
    }
  }
  return out;
}
