// `m6 serve --run R [--index I] [--data SPEC] [--host H] [--port P] [--api-key-file F]`: the HTTP API
// (/v1/describe, answer, design, embed; search with an index; recommend, with shoppers and baskets
// from --data or the data the run trained on; the run's held-out examples), health and metrics,
// /docs and the playground at /, over one loaded run, until SIGTERM. An index built by other weights
// is refused at startup with the index's own message.
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { addDatasetOptions, datasetSpecFromFlags, hasDatasetFlags, type DatasetFlags } from '../datasetOptions.js';
import { asUsageError, UsageError } from '../errors.js';
import { numberFlag } from '../flags.js';
import { openPipeline } from '../openPipeline.js';

interface ServeFlags extends DatasetFlags {
  run: string; index?: string; host: string; port: string; apiKeyFile?: string;
  maxBatch: string; maxWaitMs: string; maxQueue: string; timeoutMs: string; maxPixels: string; maxBodyMb: string; maxDesignImages: string; imageWorkers: string; log?: boolean;
}

export function registerServe(program: Command): void {
  // The dataset flags name the data /v1/recommend reads shoppers and baskets from (default: the run's own);
  // their --image-root is also the folder the catalog's images are served from.
  addDatasetOptions(program
    .command('serve')
    .description('serve a trained run over HTTP: /v1/describe, /v1/answer, /v1/design, /v1/embed, /v1/search (with --index), /v1/recommend, /v1/examples, /healthz, /readyz, /metrics, /docs and a playground at /')
    .requiredOption('--run <dir>', 'run folder of m6 train (its newest checkpoint) or one checkpoint folder')
    .option('--index <dir>', 'catalog index for /v1/search (m6 index build with this run): opened once, refused when built by other weights')
    .option('--host <addr>', 'address to bind (anything but loopback without --api-key-file prints a warning)', '127.0.0.1')
    .option('--port <n>', 'port (0: any free one)', '8080')
    .option('--api-key-file <file>', 'file holding the API key every /v1 route then needs as Authorization: Bearer <key>')
    .option('--max-batch <n>', 'most requests of one task run as one batch', '16')
    .option('--max-wait-ms <ms>', 'how long a batch waits for more requests', '5')
    .option('--max-queue <n>', 'most requests waiting per task; past it, 429', '64')
    .option('--timeout-ms <ms>', 'per-request deadline (503 while queued, 504 while running)', '60000')
    .option('--max-pixels <n>', 'largest image (width × height) an upload may have', '150000000')
    .option('--max-body-mb <n>', 'largest request body, MiB', '32')
    .option('--max-design-images <n>', 'most images one design request may ask for', '4')
    .option('--image-workers <n>', 'worker threads decoding uploaded images (0: on the event loop)', '1')
    .option('--log', 'log every request (JSON lines on stdout)'))
    .action(async (flags: ServeFlags) => {
      const apiKey = flags.apiKeyFile !== undefined ? readApiKey(flags.apiKeyFile) : undefined;
      const { startServer, isLoopback } = await import('../../serve/server.js');
      if (!isLoopback(flags.host) && apiKey === undefined) console.error(`m6 serve: warning: binding ${flags.host} without --api-key-file: anyone who can reach this address can use the model`);
      const data = hasDatasetFlags(flags) ? datasetSpecFromFlags(flags) : undefined;
      const pipeline = await openPipeline(flags.run);
      const int = (name: string, v: string, min = 1) => numberFlag(name, v, { integer: true, min });
      const server = await startServer({
        pipeline, ...(flags.index !== undefined ? { index: flags.index } : {}), ...(data !== undefined ? { data } : {}), ...(flags.imageRoot !== undefined ? { imageRoot: flags.imageRoot } : {}), host: flags.host, port: int('--port', flags.port, 0), ...(apiKey !== undefined ? { apiKey } : {}),
        logger: flags.log === true ? { level: 'info' } : { level: 'warn' },
        batch: { maxBatchSize: int('--max-batch', flags.maxBatch), maxWaitMs: int('--max-wait-ms', flags.maxWaitMs, 0), maxQueue: int('--max-queue', flags.maxQueue, 0) },
        limits: {
          requestTimeoutMs: int('--timeout-ms', flags.timeoutMs), maxPixels: int('--max-pixels', flags.maxPixels),
          maxBodyBytes: Math.round(numberFlag('--max-body-mb', flags.maxBodyMb, { positive: true }) * 2 ** 20), maxDesignImages: int('--max-design-images', flags.maxDesignImages),
          imageWorkers: int('--image-workers', flags.imageWorkers, 0),
        },
      }).catch((err: unknown) => {
        // A stale or missing index is the user's to fix: one line, exit code 2.
        pipeline.close();
        throw asUsageError(err);
      });
      const catalog = server.app.catalog;
      if (catalog !== null && catalog.imageRoot === undefined) console.error(`m6 serve: --index: the run records no dataset spec, so no catalog images are served (search results have image: null); give --image-root DIR`);
      const search = catalog !== null ? `; search ${flags.index}: ${(await catalog.index.info()).rows} items` : '';
      const shoppers = pipeline.supports('recommend') ? `; recommend's shoppers and baskets from ${data !== undefined ? 'the --data given' : 'the data the run trained on'}` : '';
      console.log(`m6 serve: ${flags.run} (step ${pipeline.step}; ${[...pipeline.tasks].join(', ')}${search}${shoppers}) on ${server.url}  playground: ${server.url}/  docs: ${server.url}/docs`);
      await server.stopped;
      console.log('m6 serve: stopped');
    });
}

function readApiKey(file: string): string {
  let key: string;
  try {
    key = readFileSync(file, 'utf8').trim();
  } catch (err) {
    throw new UsageError(`--api-key-file ${file}: ${(err as Error).message}`);
  }
  if (key.length < 16) throw new UsageError(`--api-key-file ${file}: the key is ${key.length} characters; use at least 16 (e.g. openssl rand -hex 32)`);
  return key;
}
