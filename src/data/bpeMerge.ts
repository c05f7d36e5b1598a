// Applying BPE merges to one word, exactly as Hugging Face `tokenizers` does (models/bpe/word.rs):
// a min-heap of (rank, position) over a linked list of symbols. The lowest-ranked pair merges
// first, the leftmost one on ties; a popped entry is stale when the pair at its position no longer
// merges into the same token. O(n log n) in the word's bytes, so a 10,000-space run or a long
// CJK piece (Llama-3 keeps letter runs whole) costs milliseconds, not the quadratic re-scan's seconds.

/** Token ids stay below 2^21 (tokenizers' files reach 262k). */
export const ID_LIMIT = 2 ** 21;

/**
 * Merges by pair: (a, b) → rank and merged id, in an open-addressing hash over typed arrays.
 * A Map keyed by a·2^21 + b boxes every key (they exceed V8's small integers) and made a 150k-merge
 * file spend most of its load time hashing and collecting heap numbers.
 */
export class MergeTable {
  private readonly mask: number;
  private readonly left: Int32Array;
  private readonly right: Int32Array;
  readonly rank: Int32Array;
  readonly merged: Int32Array;
  private count = 0;

  constructor(merges: number) {
    let capacity = 16;
    while (capacity < merges * 2) capacity *= 2;
    this.mask = capacity - 1;
    this.left = new Int32Array(capacity).fill(-1);
    this.right = new Int32Array(capacity);
    this.rank = new Int32Array(capacity);
    this.merged = new Int32Array(capacity);
  }

  get size(): number {
    return this.count;
  }

  private slot(a: number, b: number): number {
    let h = (Math.imul(a, 0x9e3779b1) ^ Math.imul(b, 0x85ebca6b)) & this.mask;
    while (this.left[h] !== -1 && (this.left[h] !== a || this.right[h] !== b)) h = (h + 1) & this.mask;
    return h;
  }

  /** A pair seen twice keeps its last rank, as tokenizers' HashMap does. */
  set(a: number, b: number, rank: number, merged: number): void {
    const h = this.slot(a, b);
    if (this.left[h] === -1) {
      if (this.count * 2 >= this.mask) throw new RangeError('MergeTable is full');
      this.count++;
    }
    this.left[h] = a;
    this.right[h] = b;
    this.rank[h] = rank;
    this.merged[h] = merged;
  }

  /** The slot of pair (a, b), or -1 when they do not merge. */
  find(a: number, b: number): number {
    const h = this.slot(a, b);
    return this.left[h] === -1 ? -1 : h;
  }
}

const POS_LIMIT = 2 ** 32;

/** The ids of `symbols` after every merge in `merges` that applies. */
export function mergeWord(symbols: readonly number[], merges: MergeTable): number[] {
  const n = symbols.length;
  if (n < 2) return symbols.slice();
  const sym = Int32Array.from(symbols);
  const prev = new Int32Array(n);
  const next = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    prev[i] = i - 1;
    next[i] = i + 1 < n ? i + 1 : -1;
  }
  // Heap entries: key = rank · 2^32 + position (smaller first), and the id the pair merges into.
  const keys: number[] = [];
  const ids: number[] = [];
  const push = (key: number, id: number): void => {
    let i = keys.length;
    keys.push(key);
    ids.push(id);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (keys[parent]! <= key) break;
      keys[i] = keys[parent]!;
      ids[i] = ids[parent]!;
      i = parent;
    }
    keys[i] = key;
    ids[i] = id;
  };
  const pop = (): void => {
    const lastKey = keys.pop()!;
    const lastId = ids.pop()!;
    const size = keys.length;
    if (size === 0) return;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= size) break;
      const c = l + 1 < size && keys[l + 1]! < keys[l]! ? l + 1 : l;
      if (keys[c]! >= lastKey) break;
      keys[i] = keys[c]!;
      ids[i] = ids[c]!;
      i = c;
    }
    keys[i] = lastKey;
    ids[i] = lastId;
  };
  const offer = (pos: number): void => {
    const m = merges.find(sym[pos]!, sym[next[pos]!]!);
    if (m >= 0) push(merges.rank[m]! * POS_LIMIT + pos, merges.merged[m]!);
  };
  for (let i = 0; i + 1 < n; i++) offer(i);
  while (keys.length > 0) {
    const key = keys[0]!;
    const id = ids[0]!;
    pop();
    const pos = key % POS_LIMIT;
    const right = next[pos]!;
    // Merged-away symbols have prev = -2; the last symbol has no pair.
    if (prev[pos] === -2 || right < 0) continue;
    const m = merges.find(sym[pos]!, sym[right]!);
    if (m < 0 || merges.merged[m] !== id) continue;
    sym[pos] = id;
    prev[right] = -2;
    const after = next[right]!;
    next[pos] = after;
    if (after >= 0) prev[after] = pos;
    if (prev[pos]! >= 0) offer(prev[pos]!);
    if (after >= 0) offer(pos);
  }
  const out: number[] = [];
  for (let i = 0; i >= 0; i = next[i]!) out.push(sym[i]!);
  return out;
}
