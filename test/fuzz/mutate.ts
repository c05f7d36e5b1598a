// Inputs for the fuzz targets (fast-check arbitraries of file bytes): random bytes, random text,
// and, most of the time, a valid seed file put through a few mutations (bit flips, bytes cut,
// duplicated or inserted, tokens of the format spliced in): the inputs that get deep into a parser.
import fc from 'fast-check';

type Op =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'delete'; at: number; len: number }
  | { kind: 'duplicate'; at: number; len: number; to: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'truncate'; at: number };

/** Bytes that break formats: NUL, high bytes that are not UTF-8, a BOM, a lone surrogate's encoding, CR. */
const NASTY = ['\0', '\xff', '\xfe', '\xc3', '\xed\xa0\x80', '\xef\xbb\xbf', '\r', '\r\n', '\n', '\t'].map((s) => Buffer.from(s, 'latin1'));

function apply(seed: Uint8Array, ops: readonly Op[]): Uint8Array {
  let b = Buffer.from(seed);
  for (const op of ops) {
    const at = b.length === 0 ? 0 : op.at % (b.length + 1);
    if (op.kind === 'flip') {
      if (b.length > 0) b[at % b.length] ^= 1 << op.bit;
    } else if (op.kind === 'delete') {
      b = Buffer.concat([b.subarray(0, at), b.subarray(at + op.len)]);
    } else if (op.kind === 'duplicate') {
      const chunk = b.subarray(at, at + op.len);
      const to = b.length === 0 ? 0 : op.to % (b.length + 1);
      b = Buffer.concat([b.subarray(0, to), chunk, b.subarray(to)]);
    } else if (op.kind === 'insert') {
      b = Buffer.concat([b.subarray(0, at), op.bytes, b.subarray(at)]);
    } else {
      b = b.subarray(0, at);
    }
  }
  return b;
}

/** File bytes: mostly mutations of `seeds` with the format's `tokens` spliced in, sometimes random bytes or text. */
export function fileBytes(seeds: readonly Uint8Array[], tokens: readonly string[], maxLength = 2048): fc.Arbitrary<Uint8Array> {
  const token = fc.oneof(
    fc.constantFrom(...tokens.map((t) => Buffer.from(t, 'utf8')), ...NASTY),
    fc.uint8Array({ minLength: 1, maxLength: 8 }),
  );
  const op: fc.Arbitrary<Op> = fc.oneof(
    fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
    fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), len: fc.integer({ min: 1, max: 16 }) }),
    fc.record({ kind: fc.constant('duplicate' as const), at: fc.nat(), len: fc.integer({ min: 1, max: 64 }), to: fc.nat() }),
    fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: token }),
    fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  );
  const mutated = fc.tuple(fc.constantFrom(...seeds), fc.array(op, { minLength: 1, maxLength: 8 })).map(([s, ops]) => apply(s, ops));
  return fc.oneof(
    { weight: 6, arbitrary: mutated },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: maxLength }) },
    { weight: 1, arbitrary: fc.string({ maxLength: 256, unit: 'binary' }).map((s) => Buffer.from(s, 'utf8')) },
    { weight: 2, arbitrary: fc.array(fc.constantFrom(...tokens), { maxLength: 40 }).map((t) => Buffer.from(t.join(''), 'utf8')) },
  ).filter((b) => b.length <= maxLength * 4);
}
