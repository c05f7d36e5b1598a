// The dataset-spec flags, shared by every verb that reads data (`m6 data inspect`, `m6 tokenizer
// train`, later `m6 train`, `m6 eval`, `m6 index`), so they spell and check them the same way.
import { extname } from 'node:path';
import type { Command } from 'commander';
import { DatasetSpecError, loadDatasetSpecFile, resolveDatasetSpec, type DatasetSpec, type DatasetSpecInput } from '../data/datasetSpec.js';
import { UsageError } from './errors.js';

export interface DatasetFlags {
  data?: string;
  manifest?: string;
  shards?: string;
  imageFolder?: string;
  format?: string;
  delimiter?: string;
  columns?: string;
  imageRoot?: string;
  imageCol?: string;
  imageExt?: string;
  textCol?: string;
  textFileCol?: string;
  textRoot?: string;
  labelCol?: string;
  priceCol?: string;
  attributeCol?: string;
  idCol?: string;
  splitCol?: string;
  split?: string;
  splitSeed?: string;
  splitGroupCol?: string;
  join?: string;
  joinOn?: string;
  interactions?: string;
  interactionsFormat?: string;
  userCol?: string;
  itemCol?: string;
  timeCol?: string;
  eventCol?: string;
  events?: string;
  baskets?: string;
}

export function addDatasetOptions(cmd: Command): Command {
  return cmd
    .option('--data <file>', 'dataset spec in a JSON/YAML file (the same keys as these flags; flags override it)')
    .option('--manifest <file>', 'CSV, TSV or JSONL with one row per example')
    .option('--shards <pattern>', 'WebDataset-style tar shards, e.g. data/{000000..000127}.tar (samples key.jpg/png + key.txt/json/cls)')
    .option('--image-folder <dir>', 'class-per-folder tree: <dir>/<label>/<image files>')
    .option('--format <format>', 'csv, tsv or jsonl (default: from the file extension)')
    .option('--delimiter <char>', 'field delimiter: a character or tab/comma/semicolon/pipe (default: sniffed from the first line)')
    .option('--columns <names>', 'column names of a header-less manifest, comma-separated')
    .option('--image-root <dir>', 'folder the image column is relative to (default: the manifest\'s folder)')
    .option('--image-col <name>', 'column with the image file name, relative path, or id (with --image-ext)')
    .option('--image-ext <ext>', 'extension appended to image ids, e.g. .jpg')
    .option('--text-col <names>', 'text column(s), comma-separated; several are joined into one text')
    .option('--text-file-col <names>', 'column(s) holding paths of text files whose contents join the text')
    .option('--text-root <dir>', 'folder text-file paths are relative to (default: the joined table\'s or manifest\'s folder)')
    .option('--label-col <name>', 'label column')
    .option('--price-col <name>', 'numeric price column, kept with each row (m6 index stores it: --where "price < 40")')
    .option('--attribute-col <names>', 'attribute column(s), comma-separated, kept with each row (m6 index stores them)')
    .option('--id-col <name>', 'row id column (default: the image column, else the row number)')
    .option('--split-col <name>', 'column naming each row\'s split')
    .option('--split <fractions>', 'split by row id, e.g. train:0.9,test:0.1')
    .option('--split-seed <n>', 'seed of --split (default 0)')
    .option('--split-group-col <name>', 'with --split: rows sharing this column\'s value (a sender, a product family) stay in one split')
    .option('--join <file>', 'CSV whose columns are added to each row, matched by --join-on')
    .option('--join-on <left=right>', 'manifest column = joined table column, e.g. fine="Class ID (int)"')
    .option('--interactions <file>', 'shoppers\' behaviour: user-item events (CSV/TSV/JSONL) or `user item item …` sequences (.txt)')
    .option('--interactions-format <format>', 'events or sequences (default: sniffed from the file)')
    .option('--user-col <name>', 'interactions: user column (default user)')
    .option('--item-col <name>', 'interactions: item column (default item)')
    .option('--time-col <name>', 'interactions: time column, numbers or ISO dates (none: each user\'s items are one basket)')
    .option('--event-col <name>', 'interactions: event column (view, click, cart, purchase…)')
    .option('--events <names>', 'interactions: keep only these events, comma-separated, e.g. click,cart,purchase')
    .option('--baskets <file>', 'baskets/outfits: one row per (basket, item), columns basket and item');
}

/** Whether a flag naming data was given (--image-root or a column name alone is not data: `m6 serve` and `m6 recommend` read data only when told of some). */
export function hasDatasetFlags(flags: DatasetFlags): boolean {
  return flags.data !== undefined || flags.manifest !== undefined || flags.shards !== undefined || flags.imageFolder !== undefined || flags.interactions !== undefined || flags.baskets !== undefined;
}

/** Flags (and the file behind --data, or a positional spec/manifest) → a validated spec. */
export function datasetSpecFromFlags(flags: DatasetFlags, positional?: string): DatasetSpec {
  try {
    let input: DatasetSpecInput = {};
    let dataFile = flags.data;
    let manifest = flags.manifest;
    if (positional !== undefined) {
      if (['.json', '.yaml', '.yml'].includes(extname(positional).toLowerCase())) dataFile ??= positional;
      else manifest ??= positional;
    }
    if (dataFile !== undefined) input = loadDatasetSpecFile(dataFile);
    // A split rule from the flags replaces the file's, whichever kind the file has.
    if (flags.split !== undefined) delete input.splitCol;
    if (flags.splitCol !== undefined) delete input.split;
    const fromFlags: DatasetSpecInput = { ...flags };
    delete (fromFlags as { data?: string }).data;
    if (manifest !== undefined) fromFlags.manifest = manifest;
    for (const [k, v] of Object.entries(fromFlags)) {
      if (v !== undefined) (input as Record<string, unknown>)[k] = v;
    }
    return resolveDatasetSpec(input);
  } catch (err) {
    if (err instanceof DatasetSpecError) throw new UsageError(err.message);
    throw err;
  }
}
