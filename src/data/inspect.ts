// `m6 data inspect`: what a dataset holds and what is wrong with it, before any training starts.
// Every image is decoded (to a thumbnail, so shrink-on-load keeps it fast), because a truncated
// JPEG only fails when its pixels are read.
import { basename, relative } from 'node:path';
import { BadRowLog, type BadRow, type BadRowReason } from './badRows.js';
import type { DatasetSpec } from './datasetSpec.js';
import { ImageDecodeError, probeImage, DEFAULT_MAX_PIXELS } from './image.js';
import { describeInteractions, readInteractions, type InteractionsSpec } from './interactions.js';
import { readDataset, type DataRow } from './manifest.js';

export interface Percentiles {
  min: number;
  p5: number;
  p50: number;
  p95: number;
  max: number;
}

export interface InspectReport {
  source: string;
  kind: 'manifest' | 'image-folder' | 'shards' | 'interactions';
  columns: string[];
  /** Records in the source, usable or not. */
  rows: number;
  usableRows: number;
  imagesChecked: number;
  imagesDecoded: number;
  badRows: {
    total: number;
    byReason: Array<{ reason: BadRowReason; count: number; examples: string[]; details: BadRow[] }>;
  };
  /** Most frequent first. */
  labels?: Array<{ label: string; count: number }>;
  splits?: Array<{ split: string; count: number }>;
  /** Characters per usable row's text. */
  textLength?: Percentiles;
  imageWidth?: Percentiles;
  imageHeight?: Percentiles;
  imageFormats?: Record<string, number>;
  interactions?: InteractionsSummary;
  baskets?: InteractionsSummary;
  /** At least one usable row: `m6 data inspect` exits 0. */
  usable: boolean;
}

/** What an interactions (or baskets) file holds. */
export interface InteractionsSummary {
  source: string;
  users: number;
  items: number;
  /** Steps after collapsing repeats (what a recommender trains on). */
  interactions: number;
  /** Good rows read (lines, for sequences). */
  rows: number;
  /** Rows dropped by the events filter. */
  filtered: number;
  length: { min: number; median: number; max: number };
  /** Sequences in time order, or baskets (sets). */
  ordered: boolean;
  badRows: number;
}

async function summariseInteractions(spec: InteractionsSpec, bad: BadRowLog): Promise<InteractionsSummary> {
  const before = bad.total;
  const log = await readInteractions(spec, { bad });
  return { source: log.source, ...describeInteractions(log), rows: log.rows, filtered: log.filtered, ordered: log.ordered, badRows: bad.total - before };
}

export interface InspectOptions {
  /** Decode every image (default true); false only checks the manifest. */
  decodeImages?: boolean;
  maxPixels?: number;
  /** Images decoded at once; sharp runs each on the libuv pool. */
  concurrency?: number;
  examplesPerReason?: number;
}

export function percentiles(values: number[]): Percentiles | undefined {
  if (values.length === 0) return undefined;
  const sorted = Float64Array.from(values).sort();
  const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  return { min: sorted[0]!, p5: at(0.05), p50: at(0.5), p95: at(0.95), max: sorted[sorted.length - 1]! };
}

function countBy<T>(items: T[], key: (item: T) => string | undefined): Array<{ key: string; count: number }> {
  const counts = new Map<string, number>();
  for (const item of items) {
    const k = key(item);
    if (k !== undefined) counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  return [...counts.entries()].map(([k, count]) => ({ key: k, count })).sort((a, b) => b.count - a.count || (a.key < b.key ? -1 : 1));
}

/** Run `fn` over items with at most `limit` promises in flight, keeping input order in results. */
export async function mapConcurrent<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]!, i);
    }
  });
  await Promise.all(workers);
  return results;
}

export async function inspectDataset(spec: DatasetSpec, opts: InspectOptions = {}): Promise<InspectReport> {
  const bad = new BadRowLog(opts.examplesPerReason ?? 5);
  const interactions = spec.interactions !== undefined ? await summariseInteractions(spec.interactions, bad) : undefined;
  const baskets = spec.baskets !== undefined ? await summariseInteractions(spec.baskets, bad) : undefined;
  const hasRows = spec.manifest !== undefined || spec.imageFolder !== undefined || spec.shards !== undefined;
  // Interactions alone (no catalog): the report is theirs; the row counts are their rows.
  const dataset = hasRows
    ? await readDataset(spec, { bad })
    : { source: interactions!.source, columns: [] as string[], totalRows: interactions!.rows + interactions!.filtered + interactions!.badRows, rows: [] as DataRow[], bad };
  let usable: DataRow[] = dataset.rows;
  const widths: number[] = [];
  const heights: number[] = [];
  const formats: Record<string, number> = {};
  let imagesChecked = 0;
  let imagesDecoded = 0;
  const withImages = usable.filter((r) => r.imagePath !== undefined);
  if (withImages.length > 0 && opts.decodeImages !== false) {
    const root = spec.imageRoot ?? spec.imageFolder ?? '';
    const ok = await mapConcurrent(usable, opts.concurrency ?? 8, async (row) => {
      if (row.imagePath === undefined) return true;
      imagesChecked++;
      try {
        const info = await probeImage(row.imagePath, { maxPixels: opts.maxPixels ?? DEFAULT_MAX_PIXELS });
        imagesDecoded++;
        widths.push(info.width);
        heights.push(info.height);
        formats[info.format] = (formats[info.format] ?? 0) + 1;
        return true;
      } catch (err) {
        if (!(err instanceof ImageDecodeError)) throw err;
        const file = root ? relative(root, row.imagePath) : basename(row.imagePath);
        bad.add({ reason: err.reason, source: row.source, row: row.row, file, got: err.detail });
        return false;
      }
    });
    usable = usable.filter((_r, i) => ok[i]);
  }
  const report: InspectReport = {
    source: dataset.source,
    kind: spec.imageFolder !== undefined ? 'image-folder' : spec.shards !== undefined ? 'shards' : hasRows ? 'manifest' : 'interactions',
    columns: dataset.columns,
    rows: dataset.totalRows,
    usableRows: hasRows ? usable.length : interactions!.rows,
    imagesChecked,
    imagesDecoded,
    badRows: {
      total: bad.total,
      byReason: bad.summary().map((s) => ({
        reason: s.reason,
        count: s.count,
        examples: s.examples.map((e) => e.file ?? (e.row > 0 ? `${basename(e.source)}:${e.row}` : basename(e.source))),
        details: s.examples,
      })),
    },
    usable: hasRows ? usable.length > 0 : interactions!.interactions > 0,
  };
  if (interactions !== undefined) report.interactions = interactions;
  if (baskets !== undefined) report.baskets = baskets;
  if (usable.some((r) => r.label !== undefined)) report.labels = countBy(usable, (r) => r.label).map(({ key, count }) => ({ label: key, count }));
  if (usable.some((r) => r.split !== undefined)) report.splits = countBy(usable, (r) => r.split).map(({ key, count }) => ({ split: key, count }));
  const textLengths = usable.filter((r) => r.text !== undefined).map((r) => [...r.text!].length);
  const textLength = percentiles(textLengths);
  if (textLength) report.textLength = textLength;
  const w = percentiles(widths);
  const h = percentiles(heights);
  if (w && h) {
    report.imageWidth = w;
    report.imageHeight = h;
    report.imageFormats = formats;
  }
  return report;
}

function formatInteractions(title: string, s: InteractionsSummary): string[] {
  const what = s.ordered ? 'sequences in time order' : 'baskets (unordered sets)';
  const kept = s.filtered > 0 ? `, ${s.filtered} left out by --events` : '';
  return [
    `${title.padEnd(15)}${s.source} (${what})`,
    `  users        ${s.users}`,
    `  items        ${s.items}`,
    `  interactions ${s.interactions} from ${s.rows} rows${kept}`,
    `  length       min ${s.length.min}  median ${s.length.median}  max ${s.length.max}`,
    `  bad rows     ${s.badRows}`,
  ];
}

function formatPercentiles(p: Percentiles): string {
  return `min ${p.min}  p5 ${p.p5}  p50 ${p.p50}  p95 ${p.p95}  max ${p.max}`;
}

/** The human-readable report: one fact per line, bad rows with their first few files. */
export function formatInspectReport(r: InspectReport): string {
  const lines: string[] = [];
  const pct = (n: number, d: number): string => (d > 0 ? `${((100 * n) / d).toFixed(1)}%` : '-');
  lines.push(`dataset        ${r.source} (${r.kind})`);
  if (r.columns.length > 0) lines.push(`columns        ${r.columns.join(', ')}`);
  lines.push(`rows           ${r.rows}`);
  lines.push(`usable rows    ${r.usableRows} (${pct(r.usableRows, r.rows)})`);
  if (r.imagesChecked > 0) lines.push(`images         ${r.imagesDecoded} decoded of ${r.imagesChecked}`);
  lines.push(`bad rows       ${r.badRows.total}`);
  for (const b of r.badRows.byReason) {
    const more = b.count > b.examples.length ? ', …' : '';
    lines.push(`  ${b.reason.padEnd(18)} ${String(b.count).padStart(6)}  e.g. ${b.examples.join(', ')}${more}`);
    const first = b.details[0];
    if (first?.got !== undefined) lines.push(`  ${''.padEnd(18)} ${''.padStart(6)}  (${first.field !== undefined ? `field '${first.field}': ` : ''}${first.expected !== undefined ? `expected ${first.expected}, ` : ''}got ${first.got})`);
  }
  if (r.labels) {
    const shown = r.labels.slice(0, 30).map((l) => `${l.label} ${l.count}`).join(', ');
    lines.push(`labels         ${r.labels.length}: ${shown}${r.labels.length > 30 ? ', …' : ''}`);
  }
  if (r.splits) lines.push(`splits         ${r.splits.map((s) => `${s.split} ${s.count}`).join(', ')}`);
  if (r.textLength) lines.push(`text chars     ${formatPercentiles(r.textLength)}`);
  if (r.imageWidth && r.imageHeight) {
    lines.push(`image width    ${formatPercentiles(r.imageWidth)}`);
    lines.push(`image height   ${formatPercentiles(r.imageHeight)}`);
    lines.push(`image formats  ${Object.entries(r.imageFormats ?? {}).map(([f, n]) => `${f} ${n}`).join(', ')}`);
  }
  if (r.interactions) lines.push(...formatInteractions('interactions', r.interactions));
  if (r.baskets) lines.push(...formatInteractions('baskets', r.baskets));
  lines.push(r.usable ? 'usable         yes' : 'usable         no: no row survived; see the bad rows above');
  return lines.join('\n');
}
