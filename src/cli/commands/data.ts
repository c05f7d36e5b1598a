// `m6 data inspect` (what a dataset holds and what is wrong with it), `m6 data synth` (the
// synthetic garment catalog for the offline demo and tests) and `m6 data pack` (any dataset as
// WebDataset-style tar shards).
import type { Command } from 'commander';
import { formatBadRow } from '../../data/badRows.js';
import { DatasetSpecError } from '../../data/datasetSpec.js';
import { formatInspectReport, inspectDataset } from '../../data/inspect.js';
import { addDatasetOptions, datasetSpecFromFlags, type DatasetFlags } from '../datasetOptions.js';
import { UsageError } from '../errors.js';
import { progressPrinter } from '../progressLine.js';

function positiveInt(name: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new UsageError(`${name} must be a positive integer, got '${value}'`);
  return n;
}

const BYTE_UNITS: Record<string, number> = { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 };

/** `1G`, `512M`, `64k`, `3000000000` → bytes (binary units, as `du -h` prints them). */
export function parseByteSize(name: string, value: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?$/i.exec(value.trim());
  const bytes = m === null ? NaN : Math.floor(Number(m[1]) * BYTE_UNITS[m[2]!.toLowerCase()]!);
  if (!Number.isFinite(bytes) || bytes < 4096) throw new UsageError(`${name} must be a size of at least 4096 bytes like 1G, 512M or 3000000, got '${value}'`);
  return bytes;
}

function registerPack(data: Command): void {
  addDatasetOptions(
    data
      .command('pack [spec]')
      .description('write the dataset as WebDataset-style tar shards (KEY.jpg/png + KEY.txt + KEY.json) and a dataset.json naming them')
      .requiredOption('--out <dir>', 'output folder: 000000.tar, 000001.tar, …, dataset.json')
      .option('--samples-per-shard <n>', 'samples per shard', '1000')
      .option('--max-shard-bytes <size>', 'close a shard before it passes this size (e.g. 1G, 512M)', '1G'),
  ).action(async (spec: string | undefined, flags: DatasetFlags & { out: string; samplesPerShard: string; maxShardBytes: string }) => {
    const { out, samplesPerShard, maxShardBytes, ...datasetFlags } = flags;
    const options = { out, samplesPerShard: positiveInt('--samples-per-shard', samplesPerShard), maxShardBytes: parseByteSize('--max-shard-bytes', maxShardBytes), onProgress: progressPrinter('packed') };
    const resolved = datasetSpecFromFlags(datasetFlags, spec);
    const { packDataset } = await import('../../data/shardWriter.js');
    let result;
    try {
      result = await packDataset(resolved, options);
    } catch (err) {
      if (err instanceof DatasetSpecError) throw new UsageError(err.message);
      throw err;
    }
    for (const { reason, count, examples } of result.bad.summary()) console.error(`skipped ${count} ${reason}: ${formatBadRow(examples[0]!)}`);
    const count = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;
    console.log(`wrote ${count(result.samples, 'sample')} in ${count(result.shards.length, 'shard')} (${(result.bytes / 2 ** 20).toFixed(1)} MiB) and ${result.spec}${result.bad.total > 0 ? `; ${count(result.bad.total, 'bad row')} skipped` : ''}`);
  });
}

export function registerData(program: Command): void {
  const data = program.command('data').description('inspect datasets, generate the synthetic catalog, pack datasets into tar shards');
  registerPack(data);

  addDatasetOptions(
    data
      .command('inspect [spec]')
      .description('report rows, usable rows, decoded images, bad rows by reason, labels, text and image sizes')
      .option('--json', 'print one JSON object')
      .option('--max-pixels <n>', 'refuse images with more pixels than this', '150000000')
      .option('--no-decode', 'check the manifest only; do not decode the images'),
  ).action(async (spec: string | undefined, flags: DatasetFlags & { json?: boolean; maxPixels: string; decode: boolean }) => {
    const { json, maxPixels, decode, ...datasetFlags } = flags;
    const resolved = datasetSpecFromFlags(datasetFlags, spec);
    let report;
    try {
      report = await inspectDataset(resolved, { maxPixels: positiveInt('--max-pixels', maxPixels), decodeImages: decode });
    } catch (err) {
      if (err instanceof DatasetSpecError) throw new UsageError(err.message);
      throw err;
    }
    if (json) {
      const { badRows, ...rest } = report;
      const compact = { ...rest, badRows: { total: badRows.total, byReason: badRows.byReason.map(({ details, ...b }) => ({ ...b, first: details[0] })) } };
      console.log(JSON.stringify(compact, null, 2));
    } else {
      console.log(formatInspectReport(report));
    }
    if (!report.usable) throw new UsageError('no usable rows: every row was bad (see the report above)', 1);
  });

  data
    .command('synth')
    .description('write the synthetic garment catalog: images/, catalog.jsonl, interactions.jsonl, outfits.jsonl, dataset.json')
    .requiredOption('--out <dir>', 'output folder')
    .option('--n <count>', 'number of products', '1000')
    .option('--seed <n>', 'random seed; the same seed writes byte-identical files', '0')
    .option('--size <px>', 'image side: 64, 96 or 128', '96')
    .option('--shoppers <count>', 'simulated shoppers (default: n / 10, at least 10)')
    .action(async (opts: { out: string; n: string; seed: string; size: string; shoppers?: string }) => {
      const size = Number(opts.size);
      if (![64, 96, 128].includes(size)) throw new UsageError(`--size must be 64, 96 or 128, got '${opts.size}'`);
      const seed = Number(opts.seed);
      if (!Number.isInteger(seed)) throw new UsageError(`--seed must be an integer, got '${opts.seed}'`);
      const { writeSyntheticCatalog } = await import('../../data/synth/catalog.js');
      const synthOpts: Parameters<typeof writeSyntheticCatalog>[0] = { out: opts.out, count: positiveInt('--n', opts.n), seed, size };
      if (opts.shoppers !== undefined) synthOpts.shoppers = positiveInt('--shoppers', opts.shoppers);
      const result = await writeSyntheticCatalog(synthOpts);
      console.log(`wrote ${result.products} products, ${result.interactions} interactions of ${result.shoppers} shoppers, ${result.outfits} outfits to ${opts.out}`);
    });
}
