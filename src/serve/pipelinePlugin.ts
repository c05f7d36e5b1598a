// The loaded run, shared by every route: decorates `app.m6` with the pipeline, a batcher per task
// it serves and the image decoders for uploads; on close, the batchers drain (what was accepted is
// answered), the decoders stop, and then the pipeline is freed — the last thing the server does.
import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import { Gauge } from 'prom-client';
import type { Pipeline } from '../pipelines/index.js';
import { ImageWorkerPool, MainThreadImagePreparer, type ImagePreparer } from '../data/imagePool.js';
import type { Batcher } from './batcher.js';
import type { BatchSettings, Limits } from './settings.js';
import { taskBatchers, type TaskBatchers } from './tasks.js';

export interface ServeContext {
  pipeline: Pipeline;
  batchers: TaskBatchers;
  limits: Limits;
  /** Decodes uploads to the model's pixels (worker threads, or the event loop with imageWorkers 0). */
  images: ImagePreparer;
  /** Set when the server starts closing: /readyz says no, new work is refused. */
  closing: boolean;
  /** Token streams open now. */
  streams: number;
}

declare module 'fastify' {
  interface FastifyInstance {
    m6: ServeContext;
  }
}

export interface PipelinePluginOptions {
  pipeline: Pipeline;
  batch: BatchSettings;
  limits: Limits;
  /** Close the pipeline when the app closes (default true). */
  closePipeline?: boolean;
}

export const pipelinePlugin = fp(async (app: FastifyInstance, o: PipelinePluginOptions) => {
  const { batchers } = taskBatchers(o.pipeline, o.batch, (task, size) => app.metrics.batchSize.observe({ task }, size));
  const images = o.limits.imageWorkers > 0 ? new ImageWorkerPool(o.limits.imageWorkers) : new MainThreadImagePreparer();
  const ctx: ServeContext = { pipeline: o.pipeline, batchers, limits: o.limits, images, closing: false, streams: 0 };
  app.decorate('m6', ctx);
  const all = () => Object.entries(batchers) as Array<[string, Batcher<unknown, unknown>]>;
  new Gauge({
    name: 'm6_queue_depth', help: 'requests waiting for a batch, by task', labelNames: ['task'], registers: [app.metrics.registry],
    collect() { for (const [task, b] of all()) this.set({ task }, b.depth); },
  });
  app.addHook('preClose', async () => { ctx.closing = true; });
  app.addHook('onClose', async () => {
    await Promise.all(all().map(([, b]) => b.close()));
    await images.close();
    if (o.closePipeline !== false) o.pipeline.close();
  });
}, { name: 'm6-pipeline', fastify: '5.x', dependencies: ['m6-metrics'] });
