// Prometheus metrics (prom-client), one registry per app so that two servers in one process (tests)
// never share counters: requests by route and status, latency histograms per route, batch sizes
// per task; the pipeline plugin adds queue depth. Served as text at /metrics.
import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface ServeMetrics {
  registry: Registry;
  requests: Counter<'route' | 'method' | 'status'>;
  latency: Histogram<'route'>;
  batchSize: Histogram<'task'>;
}

declare module 'fastify' {
  interface FastifyInstance {
    metrics: ServeMetrics;
  }
}

export const metricsPlugin = fp(async (app: FastifyInstance) => {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'm6_' });
  const metrics: ServeMetrics = {
    registry,
    requests: new Counter({ name: 'm6_http_requests_total', help: 'HTTP requests answered, by route and status', labelNames: ['route', 'method', 'status'], registers: [registry] }),
    latency: new Histogram({
      name: 'm6_http_request_duration_seconds', help: 'time to answer, by route', labelNames: ['route'], registers: [registry],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    }),
    batchSize: new Histogram({ name: 'm6_batch_size', help: 'requests per batch run, by task', labelNames: ['task'], registers: [registry], buckets: [1, 2, 4, 8, 16, 32, 64] }),
  };
  app.decorate('metrics', metrics);
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    metrics.requests.inc({ route, method: request.method, status: String(reply.statusCode) });
    metrics.latency.observe({ route }, reply.elapsedTime / 1000);
  });
}, { name: 'm6-metrics', fastify: '5.x' });
