// The catalog's index and search over it:
//   m6 index build --run R <data spec> --out INDEX [--store lance|exact]   embed every row, resumable
//   m6 index add --index I <data spec>                                     upsert rows (re-embedded)
//   m6 index remove --index I ID…                                          drop rows by id
//   m6 index info --index I [--json]                                       rows, dims, run, ANN state
//   m6 search --index I (--text T | --image IMG | --item ID) [--where SQL] [--k 10] [--json]
// The index records the run whose weights made its vectors; a query embeds with that run (or --run,
// which must be the same weights), and vectors of other weights are refused.
import type { Command } from 'commander';
import type { CatalogIndex, IndexInfo, SearchHit, SearchQuery, VectorColumn } from '../../search/index.js';
import type { Pipeline } from '../../pipelines/index.js';
import { addDatasetOptions, datasetSpecFromFlags, type DatasetFlags } from '../datasetOptions.js';
import { asUsageError, UsageError } from '../errors.js';
import { numberFlag } from '../flags.js';
import { openPipeline } from '../openPipeline.js';
import { progressPrinter } from '../progressLine.js';

interface BuildFlags extends DatasetFlags { run?: string; out?: string; index?: string; store?: string; batchSize: string }
interface SearchFlags { index: string; run?: string; text?: string; image?: string; item?: string; where?: string; k: string; column: string; exact?: boolean; json?: boolean }

/** Opens the index with the weights of `pipeline` (or read-only without one); user mistakes become usage errors. */
async function openIndex(uri: string, o: { pipeline?: Pipeline; store?: string }): Promise<CatalogIndex> {
  try {
    const { openCatalogIndex, provenanceOf } = await import('../../search/index.js');
    if (o.store !== undefined && o.store !== 'lance' && o.store !== 'exact') throw new UsageError(`--store must be lance or exact, got '${o.store}'`);
    return await openCatalogIndex(uri, {
      ...(o.store !== undefined ? { store: o.store as 'lance' | 'exact' } : {}),
      ...(o.pipeline !== undefined ? { weights: await provenanceOf(o.pipeline) } : {}),
    });
  } catch (err) {
    throw asUsageError(err);
  }
}

/** The run an index records as the maker of its vectors. */
async function indexRun(uri: string): Promise<string> {
  const ix = await openIndex(uri, {});
  try {
    return (await ix.info()).run;
  } finally {
    await ix.close();
  }
}

/** build and add: the data's rows embedded by the run and written to the index. */
async function writeRows(flags: BuildFlags, mode: 'build' | 'add'): Promise<void> {
  const { run, out, index: indexFlag, store, batchSize, ...datasetFlags } = flags;
  const uri = mode === 'build' ? out : indexFlag;
  if (uri === undefined) throw new UsageError(mode === 'build' ? 'give --out INDEX: where the index goes' : 'give --index INDEX: the index to add to');
  const spec = datasetSpecFromFlags(datasetFlags);
  const batch = numberFlag('--batch-size', batchSize, { integer: true, min: 1 });
  const { readDataset } = await import('../../data/manifest.js');
  const dataset = await readDataset(spec).catch((err: unknown) => { throw asUsageError(err); });
  const runDir = run ?? (mode === 'add' ? await indexRun(uri) : undefined);
  if (runDir === undefined) throw new UsageError('give --run RUN: the trained run whose embed task makes the vectors');
  using pipeline = await openPipeline(runDir, 'embed');
  const index = await openIndex(uri, { pipeline, ...(store !== undefined ? { store } : {}) });
  try {
    const { indexCatalog } = await import('../../search/index.js');
    const r = await indexCatalog(pipeline, dataset.rows, index, { batchSize: batch, onExisting: mode === 'build' ? 'skip' : 'update', onProgress: progressPrinter(mode === 'build' ? 'indexed' : 'added') });
    for (const f of r.failed.slice(0, 20)) console.error(`${f.source}:${f.row} (id '${f.id}'): skipped: ${f.error}`);
    if (r.failed.length > 20) console.error(`… and ${r.failed.length - 20} more rows skipped`);
    const info = await index.info();
    console.log(`${uri}: ${info.rows} rows (${r.inserted} new, ${r.updated} updated${r.present ? `, ${r.present} already indexed` : ''}${r.failed.length ? `, ${r.failed.length} skipped` : ''}${dataset.bad.total ? `, ${dataset.bad.total} bad rows in the data` : ''}); ANN ${annState(info)}`);
  } finally {
    await index.close();
  }
}

function annState(info: IndexInfo): string {
  const states = info.ann.columns.map((c) => `${c.column} ${c.state}${c.type ? ` (${c.type})` : ''}`);
  return info.rows < info.ann.threshold && info.ann.columns.every((c) => c.state === 'none') ? `none (exact search below ${info.ann.threshold} rows)` : states.join(', ');
}

function formatInfo(info: IndexInfo): string {
  return [
    `${info.uri}: ${info.store} index, ${info.rows} rows, ${info.dims} dims, ${info.distance} on unit vectors`,
    `vectors by ${info.model} of run ${info.run} (${info.weightsDigest})`,
    `ANN: ${annState(info)}`,
    `created ${info.createdAt}, updated ${info.updatedAt}`,
  ].join('\n');
}

export function registerIndex(program: Command): void {
  const index = program.command('index').description('a catalog index for search and recommendations: build, add, remove, info');
  const buildOptions = (cmd: Command) => addDatasetOptions(cmd)
    .option('--run <dir>', 'the trained run whose embed task makes the vectors (add: default the index\'s own run)')
    .option('--batch-size <n>', 'rows embedded and written at once', '256');
  buildOptions(index.command('build').description('embed every row of a dataset into a new index (run it again to finish an interrupted build)'))
    .requiredOption('--out <index>', 'the index: a folder (or an object-store URI for lance)')
    .option('--store <store>', 'lance (LanceDB embedded, the default) or exact (in memory, one matmul: small catalogs)')
    .action((flags: BuildFlags) => writeRows(flags, 'build'));
  buildOptions(index.command('add').description('add or update rows of a dataset (re-embedded) in an index'))
    .requiredOption('--index <index>', 'the index')
    .action((flags: BuildFlags) => writeRows(flags, 'add'));
  index.command('remove <ids...>').description('remove rows by id').requiredOption('--index <index>', 'the index')
    .option('--run <dir>', 'the run (default: the index\'s own)')
    .action(async (ids: string[], flags: { index: string; run?: string }) => {
      const runDir = flags.run ?? await indexRun(flags.index);
      using pipeline = await openPipeline(runDir, 'embed');
      const ix = await openIndex(flags.index, { pipeline });
      try {
        const removed = await ix.remove(ids).catch((err: unknown) => { throw asUsageError(err); });
        console.log(`${flags.index}: removed ${removed} of ${ids.length} ids; ${(await ix.info()).rows} rows left`);
      } finally {
        await ix.close();
      }
    });
  index.command('info').description('rows, dimensions, the run that made the vectors, the ANN index state').requiredOption('--index <index>', 'the index')
    .option('--json', 'print the info as JSON')
    .action(async (flags: { index: string; json?: boolean }) => {
      const ix = await openIndex(flags.index, {});
      try {
        const info = await ix.info();
        console.log(flags.json === true ? JSON.stringify(info, null, 2) : formatInfo(info));
      } finally {
        await ix.close();
      }
    });
}

export function registerSearch(program: Command): void {
  program.command('search').description('search a catalog index by text, by image, or for items like one of its own')
    .requiredOption('--index <index>', 'the index (m6 index build)')
    .option('--run <dir>', 'the run that embeds the query (default: the index\'s own; other weights are refused)')
    .option('--text <text>', 'a text query: "red polka-dot dress"')
    .option('--image <file>', 'an image query: items that look like it')
    .option('--item <id>', 'items like this one of the index')
    .option('--where <filter>', "a filter over the catalog's columns, e.g. \"label = 'dress' AND price < 40\"")
    .option('--k <n>', 'results', '10')
    .option('--column <column>', 'which vectors to search: fused (image + text), image or text; default: image for a text query (text→image), else fused', '')
    .option('--exact', 'skip the ANN index: an exact scan')
    .option('--json', 'print the results as JSON')
    .action(async (flags: SearchFlags) => {
      const given = [flags.text, flags.image, flags.item].filter((x) => x !== undefined).length;
      if (given !== 1) throw new UsageError('give exactly one of --text TEXT, --image FILE or --item ID');
      const k = numberFlag('--k', flags.k, { integer: true, min: 1 });
      if (flags.column !== '' && !['fused', 'image', 'text'].includes(flags.column)) throw new UsageError(`--column must be fused, image or text, got '${flags.column}'`);
      const query: SearchQuery = flags.text !== undefined ? { text: flags.text } : flags.image !== undefined ? { image: flags.image } : { item: flags.item! };
      const runDir = flags.run ?? await indexRun(flags.index);
      using pipeline = await openPipeline(runDir, 'embed');
      const { openQueryIndex, searchCatalog } = await import('../../search/index.js');
      const ix = await openQueryIndex(flags.index, pipeline).catch((err: unknown) => { throw asUsageError(err); });
      let hits: SearchHit[];
      try {
        const embed = async (q: { text: string } | { image: string | Float32Array }) => (await pipeline.embed('text' in q ? { texts: [q.text] } : { images: [q.image] }))[0]!;
        hits = await searchCatalog(ix, query, embed, {
          k, ...(flags.column !== '' ? { column: flags.column as VectorColumn } : {}), ...(flags.where !== undefined ? { where: flags.where } : {}), ...(flags.exact ? { exact: true } : {}),
        }).catch((err: unknown) => { throw asUsageError(err); });
      } finally {
        await ix.close();
      }
      if (flags.json === true) console.log(JSON.stringify(hits, null, 2));
      else for (const h of hits) console.log(`${h.score.toFixed(4)}\t${h.id}\t${h.title}\t${h.imagePath}`);
    });
}
