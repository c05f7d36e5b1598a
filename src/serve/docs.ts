// /docs: the OpenAPI document generated from the routes' schemas (@fastify/swagger) and its UI
// (@fastify/swagger-ui, whose assets ship in the package: no network). Registered before the routes.
import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';

export const docsPlugin = fp(async (app: FastifyInstance, o: { auth: boolean }) => {
  await app.register(swagger, {
    openapi: {
      info: { title: 'm6 serve', version: '1', description: 'M6: describe, answer, design, embed and search a catalog with one model (search needs m6 serve --index). Errors are application/problem+json.' },
      ...(o.auth ? { components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } }, security: [{ bearer: [] }] } : {}),
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
}, { name: 'm6-docs', fastify: '5.x' });
