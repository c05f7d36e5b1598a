// `build(opts)`: the m6 HTTP server, unstarted (tests call `inject`, `m6 serve` calls `listen`).
// Plugins in order: problem+json errors, metrics, the pipeline and its batchers, the catalog index
// (with --index), the data's shoppers (read on first use), docs, then the routes — health at the
// root, the tasks, search, recommend and the run's held-out examples under /v1 behind the API key when one is set, and the playground at /.
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import multipart from '@fastify/multipart';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { DatasetSpec } from '../data/datasetSpec.js';
import type { Pipeline } from '../pipelines/index.js';
import { imageRootOf, runDataSpec } from '../eval/heldOutExamples.js';
import { runDirOf } from '../train/vqFiles.js';
import { bearerAuth } from './auth.js';
import { catalogPlugin } from './catalogPlugin.js';
import { docsPlugin } from './docs.js';
import { metricsPlugin } from './metrics.js';
import { pipelinePlugin } from './pipelinePlugin.js';
import { playgroundPlugin } from './playground.js';
import { problemPlugin } from './problem.js';
import { designRoutes } from './routes/design.js';
import { embedRoutes } from './routes/embed.js';
import { examplesRoutes } from './routes/examples.js';
import { recommendRoutes } from './routes/recommend.js';
import { searchRoutes } from './routes/search.js';
import { shoppersPlugin } from './shoppersPlugin.js';
import { healthRoutes } from './routes/health.js';
import { textRoutes } from './routes/text.js';
import { Problem } from './schemas.js';
import { DEFAULT_BATCH, DEFAULT_LIMITS, type BatchSettings, type Limits } from './settings.js';

export interface ServeOptions {
  pipeline: Pipeline;
  /** With a key, every /v1 route needs `Authorization: Bearer <key>`. */
  apiKey?: string;
  batch?: Partial<BatchSettings>;
  limits?: Partial<Limits>;
  /** Fastify's logger option (default off). */
  logger?: FastifyServerOptions['logger'];
  /** The catalog index for /v1/search (a folder or URI, built by this run's weights). */
  index?: string;
  /** Where the catalog's images are (default: the image root of the data the run trained on); no image outside it is served. */
  imageRoot?: string;
  /** The dataset whose shoppers and baskets /v1/recommend reads (default: the one the run trained on, from RUN/split.json). */
  data?: DatasetSpec;
  /** Free the pipeline when the app closes (default true). */
  closePipeline?: boolean;
}

export async function build(o: ServeOptions): Promise<FastifyInstance> {
  const limits: Limits = { ...DEFAULT_LIMITS, ...o.limits };
  const batch: BatchSettings = { ...DEFAULT_BATCH, ...o.batch };
  const app = Fastify({
    logger: o.logger ?? false,
    bodyLimit: limits.maxBodyBytes,
    // Unknown fields are an error naming them, not silently dropped; multipart's string fields are coerced.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: true } },
    // Slow clients cannot hold a connection open forever; keep-alive idles close on shutdown.
    requestTimeout: limits.requestTimeoutMs + 5_000,
    forceCloseConnections: 'idle',
  }).withTypeProvider<TypeBoxTypeProvider>();
  // JSON and multipart only: a text/plain body is a 415, not a string that fails the schema.
  app.removeContentTypeParser('text/plain');
  app.addSchema(Problem);
  await app.register(problemPlugin);
  await app.register(metricsPlugin);
  await app.register(pipelinePlugin, { pipeline: o.pipeline, batch, limits, ...(o.closePipeline !== undefined ? { closePipeline: o.closePipeline } : {}) });
  await app.register(catalogPlugin, { pipeline: o.pipeline, ...(o.index !== undefined ? { uri: o.index } : {}), ...withImageRoot(o) });
  await app.register(shoppersPlugin, { pipeline: o.pipeline, ...(o.data !== undefined ? { data: o.data } : {}) });
  await app.register(docsPlugin, { auth: o.apiKey !== undefined });
  await app.register(multipart, { limits: { fileSize: limits.maxBodyBytes, files: 1, fields: 16, parts: 17 } });
  await app.register(healthRoutes);
  await app.register(async (v1) => {
    if (o.apiKey !== undefined) v1.addHook('onRequest', bearerAuth(o.apiKey));
    await v1.register(textRoutes);
    await v1.register(designRoutes);
    await v1.register(embedRoutes);
    await v1.register(searchRoutes);
    await v1.register(recommendRoutes);
    await v1.register(examplesRoutes);
  }, { prefix: '/v1' });
  await app.register(playgroundPlugin);
  return app;
}

/** The catalog's image root: the one given, else that of the data the run trained on (the demo indexes that data). */
function withImageRoot(o: ServeOptions): { imageRoot?: string } {
  if (o.index === undefined) return {};
  if (o.imageRoot !== undefined) return { imageRoot: o.imageRoot };
  // Data given with images (--data) is the catalog's; interactions alone have none.
  const spec = o.data !== undefined && (o.data.manifest !== undefined || o.data.shards !== undefined || o.data.imageFolder !== undefined) ? o.data : runDataSpec(runDirOf(o.pipeline.checkpoint));
  return 'reason' in spec ? {} : { imageRoot: imageRootOf(spec) };
}
