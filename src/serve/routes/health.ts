// GET /healthz (the process answers), /readyz (the model is loaded and the server takes work),
// /metrics (Prometheus text). Never behind the API key: load balancers and scrapers call them.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';

export const healthRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/healthz', { schema: { summary: 'Alive', tags: ['health'], response: { 200: Type.Object({ status: Type.Literal('ok') }) } } }, async () => ({ status: 'ok' as const }));

  app.get('/readyz', {
    schema: { summary: 'Ready: the model is loaded and the server is not shutting down', tags: ['health'], response: { 200: Type.Object({ ready: Type.Boolean(), tasks: Type.Array(Type.String()), step: Type.Integer() }), 503: Type.Object({ ready: Type.Boolean(), reason: Type.String() }) } },
  }, async (_request, reply) => {
    if (app.m6.closing) return reply.code(503).send({ ready: false, reason: 'shutting down' });
    // search is served when the server has a catalog index.
    return { ready: true, tasks: [...app.m6.pipeline.tasks, ...(app.catalog !== null ? ['search'] : [])], step: app.m6.pipeline.step };
  });

  app.get('/metrics', { schema: { summary: 'Prometheus metrics', tags: ['health'], produces: ['text/plain'] } }, async (_request, reply) => {
    return reply.type(app.metrics.registry.contentType).send(await app.metrics.registry.metrics());
  });
};
