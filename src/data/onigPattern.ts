// Hugging Face `tokenizers` compiles Split and ByteLevel patterns with Oniguruma (Ruby syntax);
// V8 runs JavaScript's dialect. The patterns real tokenizer.json files use differ from JS in a
// few places, translated here so that a piece splits exactly where Hugging Face splits it:
//
//   (?i:…)     Node 20 has no inline modifiers: letters become classes of their case variants
//   \s \S      Oniguruma: TAB…CR, NEL (U+0085), Zs, Zl, Zp; JS adds U+FEFF and lacks NEL
//   \d \w      Unicode in Oniguruma, ASCII in JS
//   .          Oniguruma excludes only \n; JS also \r, U+2028, U+2029
//   ^ $        line anchors in Ruby syntax, string anchors in JS
//
// Anything else that could match differently (possessive quantifiers, atomic groups, nested
// classes, \b, \A…) is refused by name rather than guessed at.

export class UnsupportedPatternError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnsupportedPatternError';
  }
}

/** Oniguruma's \s for Unicode strings, also Rust's `char::is_whitespace` (the White_Space property). */
export const WHITESPACE_CLASS_BODY = '\\t\\n\\v\\f\\r\\x85\\p{Zs}\\p{Zl}\\p{Zp}';
const WORD_CLASS_BODY = '\\p{L}\\p{M}\\p{Nd}\\p{Pc}';
const GENERAL_CATEGORY = /^(?:L|Lu|Ll|Lt|Lm|Lo|LC|M|Mn|Mc|Me|N|Nd|Nl|No|P|Pc|Pd|Ps|Pe|Pi|Pf|Po|S|Sm|Sc|Sk|So|Z|Zs|Zl|Zp|C|Cc|Cf|Cs|Co|Cn)$/;
// Characters that JS's u-mode lets a backslash escape; any other escaped punctuation is a literal.
const SYNTAX = new Set('^$\\.*+?()[]{}|/');

// Under Unicode simple case folding two non-ASCII characters fold to ASCII letters; everything
// else (ASCII or not) pairs with its own upper/lower case.
const EXTRA_FOLDS: Readonly<Record<string, string>> = { k: '\u212a', s: '\u017f' };

function caseVariants(ch: string): string {
  const lower = ch.toLowerCase();
  const set = new Set([ch, lower, ch.toUpperCase()]);
  const extra = EXTRA_FOLDS[lower];
  if (extra !== undefined) set.add(extra);
  return [...set].filter((c) => [...c].length === 1).map(literal).join('');
}

function literal(ch: string): string {
  return SYNTAX.has(ch) || ch === '-' ? `\\${ch}` : ch;
}

/** JS source (for the `u` flag) of an Oniguruma pattern; throws UnsupportedPatternError naming the construct. */
export function onigToJs(pattern: string): string {
  let out = '';
  let inClass = false;
  // One entry per open group: is it case-insensitive?
  const groups: boolean[] = [];
  const insensitive = (): boolean => groups.length > 0 && groups[groups.length - 1]!;
  let lastWasQuantifier = false;
  const chars = [...pattern];
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i]!;
    let quantifier = false;
    if (c === '\\') {
      const e = chars[++i];
      if (e === undefined) throw new UnsupportedPatternError('pattern ends with a lone backslash');
      if (e === 'p' || e === 'P') {
        const close = chars.indexOf('}', i);
        if (chars[i + 1] !== '{' || close < 0) throw new UnsupportedPatternError(`\\${e} without a {name}`);
        const name = chars.slice(i + 2, close).join('');
        if (name.startsWith('^')) throw new UnsupportedPatternError(`negated property \\${e}{${name}}`);
        // Oniguruma takes script names bare (\p{Han}); JS wants them qualified.
        out += `\\${e}{${GENERAL_CATEGORY.test(name) ? name : `Script=${name}`}}`;
        i = close;
      } else if (e === 's') out += inClass ? WHITESPACE_CLASS_BODY : `[${WHITESPACE_CLASS_BODY}]`;
      else if (e === 'd') out += '\\p{Nd}';
      else if (e === 'w') out += inClass ? WORD_CLASS_BODY : `[${WORD_CLASS_BODY}]`;
      else if (e === 'S' || e === 'D' || e === 'W') {
        if (inClass) throw new UnsupportedPatternError(`\\${e} inside a character class`);
        out += `[^${e === 'S' ? WHITESPACE_CLASS_BODY : e === 'D' ? '\\p{Nd}' : WORD_CLASS_BODY}]`;
      } else if ('tnrfv'.includes(e)) out += `\\${e}`;
      else if (e === 'x' || e === 'u') {
        // \xHH, \x{H…} and \uHHHH: copied as a code point escape.
        let hex: string;
        if (chars[i + 1] === '{') {
          const end = chars.indexOf('}', i);
          hex = chars.slice(i + 2, end).join('');
          i = end;
        } else {
          const n = e === 'x' ? 2 : 4;
          hex = chars.slice(i + 1, i + 1 + n).join('');
          i += n;
        }
        if (!/^[0-9a-fA-F]+$/.test(hex)) throw new UnsupportedPatternError(`malformed \\${e} escape`);
        out += `\\u{${hex}}`;
      } else if (/[0-9A-Za-z]/.test(e)) throw new UnsupportedPatternError(`escape \\${e}`);
      else out += SYNTAX.has(e) || (inClass && e === '-') ? `\\${e}` : `\\u{${e.codePointAt(0)!.toString(16)}}`;
    } else if (inClass) {
      if (c === '[') throw new UnsupportedPatternError('nested character class');
      if (c === '&' && chars[i + 1] === '&') throw new UnsupportedPatternError('class intersection &&');
      if (c === ']') inClass = false;
      if (insensitive() && /\p{L}/u.test(c)) {
        // [a-z] would become [aA-zZ]: a range's case variants are not a list of its ends' variants.
        if (chars[i + 1] === '-' || chars[i - 1] === '-') throw new UnsupportedPatternError('a range inside a (?i:…) character class');
        out += caseVariants(c);
      } else out += c;
    } else if (c === '[') {
      inClass = true;
      out += c;
      if (chars[i + 1] === '^') out += chars[++i];
      if (chars[i + 1] === ']') {
        out += '\\]';
        i++;
      }
    } else if (c === '(') {
      if (chars[i + 1] !== '?') groups.push(insensitive());
      else {
        const head = chars.slice(i, i + 4).join('');
        if (head.startsWith('(?i:')) {
          groups.push(true);
          out += '(?:';
          i += 3;
          lastWasQuantifier = false;
          continue;
        }
        if (/^\(\?(?::|=|!|<=|<!|<[A-Za-z])/.test(head)) groups.push(insensitive());
        else throw new UnsupportedPatternError(`group ${head}…`);
      }
      out += c;
    } else if (c === ')') {
      groups.pop();
      out += c;
    } else if (c === '*' || c === '+' || c === '?' || c === '{') {
      if (c === '+' && lastWasQuantifier) throw new UnsupportedPatternError('possessive quantifier');
      if (c === '?' && lastWasQuantifier) out += c; // lazy
      else if (c === '{') {
        const end = chars.indexOf('}', i);
        const body = chars.slice(i, end + 1).join('');
        if (end < 0 || !/^\{\d*,?\d*\}$/.test(body)) throw new UnsupportedPatternError(`brace ${body || '{'} that is not a {n,m} repeat`);
        out += body;
        i = end;
        quantifier = true;
      } else {
        out += c;
        quantifier = true;
      }
    } else if (c === '.') out += '[^\\n]';
    else if (c === '^') out += '(?<![^\\n])';
    else if (c === '$') out += '(?![^\\n])';
    else if (c === '}' || c === ']') out += `\\${c}`; // literal in Oniguruma, an error in JS u-mode
    else out += insensitive() && /\p{L}/u.test(c) ? `[${caseVariants(c)}]` : c;
    lastWasQuantifier = quantifier;
  }
  if (inClass) throw new UnsupportedPatternError('unclosed character class');
  return out;
}

/** A global, Unicode JS RegExp matching what the Oniguruma pattern matches. */
export function onigRegExp(pattern: string): RegExp {
  const source = onigToJs(pattern);
  try {
    return new RegExp(source, 'gu');
  } catch (err) {
    throw new UnsupportedPatternError(`${(err as Error).message} (translated from ${JSON.stringify(pattern)})`);
  }
}

/** A global RegExp matching `text` literally (Split's `{String: …}` pattern). */
export function literalRegExp(text: string): RegExp {
  return new RegExp(text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'), 'gu');
}
