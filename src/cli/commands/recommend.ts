// m6 recommend --run R [--index I] [<data spec>] (--user U | --history ID,ID,… | --similar ID | --complement ID)
//              [--where SQL] [--k 10] [--json]
// Recommendations from a run trained with the recommend task: for a shopper of the data's
// interactions (their whole history), for a session without an account (--history), items like
// one (--similar), or items of other categories that go with one (--complement: co-occurrence in
// the data's baskets and sessions, completed by the run's item vectors). Items already in the
// history are left out; --where filters by the index's catalog columns, as `m6 search` does.
import type { Command } from 'commander';
import type { DatasetSpec } from '../../data/datasetSpec.js';
import type { Pipeline } from '../../pipelines/index.js';
import type { CatalogIndex, ComplementSource, RecommendHit, RecommendQuery } from '../../search/index.js';
import { addDatasetOptions, datasetSpecFromFlags, hasDatasetFlags, type DatasetFlags } from '../datasetOptions.js';
import { asUsageError, UsageError } from '../errors.js';
import { numberFlag } from '../flags.js';
import { openPipeline } from '../openPipeline.js';

interface RecommendFlags extends DatasetFlags {
  run?: string;
  index?: string;
  user?: string;
  history?: string;
  similar?: string;
  complement?: string;
  where?: string;
  k: string;
  json?: boolean;
}

/** The shopper's whole history in the data's interactions, oldest first (search/'s userHistory, as the server reads it). */
async function historyOf(spec: DatasetSpec | undefined, user: string): Promise<readonly string[]> {
  if (spec?.interactions === undefined) throw new UsageError('--user needs the data\'s interactions: give --data SPEC (with "interactions") or --interactions FILE');
  const { readShopperData, userHistory } = await import('../../search/index.js');
  try {
    return userHistory(await readShopperData(spec, { historiesOnly: true }), user);
  } catch (err) {
    throw asUsageError(err);
  }
}

/** Co-occurrence over the data's baskets and sessions, with each item's category from the data's labels or the index's. */
async function complementsOf(pipeline: Pipeline, spec: DatasetSpec | undefined, index: CatalogIndex | undefined): Promise<ComplementSource> {
  if (spec?.baskets === undefined && spec?.interactions === undefined) throw new UsageError('--complement needs baskets or interactions to learn from: give --data SPEC (with "baskets" or "interactions")');
  const { readShopperData, complementsFrom } = await import('../../search/index.js');
  try {
    return await complementsFrom(pipeline.items!, await readShopperData(spec), index);
  } catch (err) {
    throw asUsageError(err);
  }
}

/** Without an index, the results' labels from the data's manifest (when one is given). */
async function labelsOf(spec: DatasetSpec | undefined): Promise<ReadonlyMap<string, string> | undefined> {
  if (spec?.manifest === undefined) return undefined;
  const { readItemLabels } = await import('../../search/index.js');
  return readItemLabels(spec).catch((err: unknown) => { throw asUsageError(err); });
}

function queryOf(flags: RecommendFlags): Promise<RecommendQuery> | RecommendQuery {
  const given = [flags.user, flags.history, flags.similar, flags.complement].filter((x) => x !== undefined).length;
  if (given !== 1) throw new UsageError('give exactly one of --user USER, --history ID,ID,…, --similar ID or --complement ID');
  if (flags.history !== undefined) return { history: flags.history.split(',').map((s) => s.trim()).filter((s) => s.length > 0) };
  if (flags.similar !== undefined) return { similar: flags.similar };
  if (flags.complement !== undefined) return { complement: flags.complement };
  return (async () => ({ history: await historyOf(hasDatasetFlags(flags) ? datasetSpecFromFlags(flags) : undefined, flags.user!) }))();
}

function print(hits: readonly RecommendHit[], json: boolean): void {
  if (json) console.log(JSON.stringify(hits, null, 2));
  else for (const h of hits) console.log(`${h.score.toFixed(4)}\t${h.id}\t${h.title}\t${h.label}\t${h.imagePath}`);
}

export function registerRecommend(program: Command): void {
  addDatasetOptions(program.command('recommend').description('recommend items: for a shopper (--user) or a session (--history), items like one (--similar) or that go with one (--complement)'))
    .option('--run <dir>', 'the run trained with the recommend task (default: the --index\'s own run)')
    .option('--index <index>', 'the catalog index (m6 index build) for titles, images and --where filters')
    .option('--user <id>', 'a shopper of the data\'s interactions: their whole history is the query')
    .option('--history <ids>', 'a session\'s items, oldest first, comma-separated')
    .option('--similar <id>', 'items like this one')
    .option('--complement <id>', 'items of other categories that go with this one')
    .option('--where <filter>', "a filter over the index's catalog columns, e.g. \"label = 'dress' AND price < 40\"")
    .option('--k <n>', 'results', '10')
    .option('--json', 'print the results as JSON')
    .action(async (flags: RecommendFlags) => {
      const k = numberFlag('--k', flags.k, { integer: true, min: 1 });
      const query = await queryOf(flags);
      const spec = hasDatasetFlags(flags) ? datasetSpecFromFlags(flags) : undefined;
      if (flags.run === undefined && flags.index === undefined) throw new UsageError('give --run RUN (or an --index, whose run is used)');
      const { openQueryIndex, recommendItems, openCatalogIndex } = await import('../../search/index.js');
      const runDir = flags.run ?? (await (async () => { const ix = await openCatalogIndex(flags.index!, { create: false }).catch((e: unknown) => { throw asUsageError(e); }); try { return (await ix.info()).run; } finally { await ix.close(); } })());
      using pipeline = await openPipeline(runDir, 'recommend');
      const index = flags.index !== undefined ? await openQueryIndex(flags.index, pipeline).catch((err: unknown) => { throw asUsageError(err); }) : undefined;
      try {
        const complements = 'complement' in query ? await complementsOf(pipeline, spec, index) : undefined;
        const labels = index === undefined ? await labelsOf(spec) : undefined;
        const hits = await recommendItems({ pipeline, ...(index !== undefined ? { index } : {}), ...(labels !== undefined ? { labels } : {}), ...(complements !== undefined ? { complements } : {}) }, query, { k, ...(flags.where !== undefined ? { where: flags.where } : {}) })
          .catch((err: unknown) => { throw asUsageError(err); });
        print(hits, flags.json === true);
      } finally {
        await index?.close();
      }
    });
}
