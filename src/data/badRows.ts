// Bad rows are counted and reported, never fatal: one bad photo in a 100k-row catalog must not
// stop a training run. Each record says which file, which row, which field, expected vs got.
import { oneLine } from '../torch/inputError.js';

export type BadRowReason =
  | 'missing file'
  | 'unreadable file'
  | 'empty file'
  | 'not an image'
  | 'truncated image'
  | 'too many pixels'
  | 'unreadable image'
  | 'path escapes root'
  | 'empty text'
  | 'missing value'
  | 'invalid UTF-8'
  | 'invalid JSON'
  | 'malformed qa'
  | 'wrong field count'
  | 'malformed row'
  | 'unknown label'
  | 'unparsable time'
  | 'truncated shard'
  | 'malformed sample'
  | 'not a number';

export interface BadRow {
  reason: BadRowReason;
  /** The manifest (or folder) the row came from. */
  source: string;
  /** 1-based line/record number in the source; 0 when the row is a file of an image folder. */
  row: number;
  /** The sample's key, when the row is a sample of a tar shard (`source` is then the shard). */
  sample?: string;
  field?: string;
  /** The file the row points at, when the problem is with that file. */
  file?: string;
  expected?: string;
  got?: string;
}

export function formatBadRow(bad: BadRow): string {
  const where = bad.sample !== undefined ? `${bad.source} sample '${bad.sample}'` : bad.row > 0 ? `${bad.source}:${bad.row}` : bad.source;
  const parts = [`${where}: ${bad.reason}`];
  if (bad.field !== undefined) parts.push(`field '${bad.field}'`);
  if (bad.file !== undefined) parts.push(`file ${bad.file}`);
  if (bad.expected !== undefined) parts.push(`expected ${bad.expected}`);
  if (bad.got !== undefined) parts.push(`got ${bad.got}`);
  return oneLine(parts.join(', '));  // a quoted parser message may carry the row's line breaks
}

/** Counts bad rows by reason and keeps the first few of each as examples. */
export class BadRowLog {
  private readonly byReason = new Map<BadRowReason, { count: number; examples: BadRow[] }>();

  constructor(readonly examplesPerReason = 5) {}

  add(bad: BadRow): void {
    let entry = this.byReason.get(bad.reason);
    if (entry === undefined) {
      entry = { count: 0, examples: [] };
      this.byReason.set(bad.reason, entry);
    }
    entry.count++;
    if (entry.examples.length < this.examplesPerReason) entry.examples.push(bad);
  }

  get total(): number {
    let n = 0;
    for (const e of this.byReason.values()) n += e.count;
    return n;
  }

  count(reason: BadRowReason): number {
    return this.byReason.get(reason)?.count ?? 0;
  }

  /** Reasons sorted by count (most frequent first), each with its first examples. */
  summary(): Array<{ reason: BadRowReason; count: number; examples: BadRow[] }> {
    return [...this.byReason.entries()]
      .map(([reason, e]) => ({ reason, count: e.count, examples: e.examples.slice() }))
      .sort((a, b) => b.count - a.count || a.reason.localeCompare(b.reason));
  }
}
