// POST /v1/embed: a text or an image → a unit vector in the shared space (search = dot product).
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { EmbedBody, EmbedOut, problemResponses } from '../schemas.js';
import { HttpProblem } from '../problem.js';
import { imageBytes, multipartToBody, pixelsOf } from '../uploads.js';
import { batcherFor, checkText, elapsed, runJob } from './common.js';

export const embedRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.post('/embed', {
    schema: { summary: 'Embed a text or an image', tags: ['tasks'], consumes: ['application/json', 'multipart/form-data'], body: EmbedBody, response: { 200: EmbedOut, ...problemResponses } },
    preValidation: multipartToBody,
  }, async (request, reply) => {
    const b = batcherFor(app, 'embed', app.m6.batchers.embed);
    const bytes = imageBytes(request, request.body.image);
    const text = request.body.text;
    if ((bytes === undefined) === (text === undefined)) throw new HttpProblem(400, 'validation', 'body: send exactly one of text and image', bytes === undefined ? 'text' : 'image');
    const job = text !== undefined ? { text: checkText(app, 'text', text) } : { pixels: await pixelsOf(app, bytes!) };
    const out = await runJob(app, request, reply, b, job);
    return { vector: Array.from(out.vector), dim: out.vector.length, ms: elapsed(reply) };
  });
};
