// The playground at / : a static page (index.html, style.css and app.js compiled from
// playground/app.ts by the project's build), served by @fastify/static from dist/.
import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';

export const PLAYGROUND_DIR = fileURLToPath(new URL('./playground/', import.meta.url));

export const playgroundPlugin = fp(async (app: FastifyInstance) => {
  if (!existsSync(PLAYGROUND_DIR)) {
    app.log.warn(`no playground at ${PLAYGROUND_DIR} (run npm run build)`);
    return;
  }
  await app.register(fastifyStatic, { root: PLAYGROUND_DIR, prefix: '/', index: ['index.html'], wildcard: false, decorateReply: false });
}, { name: 'm6-playground', fastify: '5.x' });
