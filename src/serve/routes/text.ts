// POST /v1/describe (image → text) and POST /v1/answer (question [+ image] → text). With
// `stream: true` the text comes as server-sent events, one per token (event: token), then the
// whole result (event: done); streams do not batch, so they are bounded apart (maxStreams → 429).
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { FastifyInstance } from 'fastify';
import type { TextRequest, TextResult } from '../../pipelines/index.js';
import { AnswerBody, DescribeBody, TextOut, problemResponses } from '../schemas.js';
import { imageBytes, multipartToBody, pixelsOf, requiredPixels } from '../uploads.js';
import { HttpProblem } from '../problem.js';
import { batcherFor, checkText, elapsed, runJob } from './common.js';

const consumes = ['application/json', 'multipart/form-data'];

function textOut(r: Extract<TextResult, { ok: true }>, reply: FastifyReply) {
  return { text: r.text, tokenIds: r.tokenIds, logProb: r.logProb, finishReason: r.finishReason, ms: elapsed(reply) };
}

/** Streams one text as SSE; the client going away stops the generation at the next token. */
async function streamText(app: FastifyInstance, request: FastifyRequest, reply: FastifyReply, req: TextRequest, maxNewTokens: number | undefined): Promise<void> {
  const ctx = app.m6;
  if (ctx.streams >= ctx.limits.maxStreams) throw new HttpProblem(429, 'overloaded', `${ctx.streams} token streams are open, the most this server runs at once: retry, or ask without stream`, undefined, { 'retry-after': '1' });
  ctx.streams++;
  let gone = false;
  reply.raw.once('close', () => { gone = true; });
  const stream = ctx.pipeline.generateStream(req, maxNewTokens !== undefined ? { maxNewTokens } : {});
  try {
    reply.hijack();
    reply.raw.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive' });
    let next = await stream.next();
    for (; !next.done && !gone; next = await stream.next()) reply.raw.write(`event: token\ndata: ${JSON.stringify(next.value)}\n\n`);
    if (next.done) {
      const r = next.value;
      reply.raw.write(r.ok ? `event: done\ndata: ${JSON.stringify(textOut(r, reply))}\n\n` : `event: error\ndata: ${JSON.stringify({ status: 422, detail: r.error })}\n\n`);
    }
  } catch (err) {
    request.log.error({ err }, 'stream failed');
    reply.raw.write(`event: error\ndata: ${JSON.stringify({ status: 500, detail: 'internal error' })}\n\n`);
  } finally {
    if (gone) await stream.return(undefined as never);
    ctx.streams--;
    reply.raw.end();
  }
}

export const textRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.post('/describe', {
    schema: { summary: 'Describe a product photo', tags: ['tasks'], consumes, body: DescribeBody, response: { 200: TextOut, ...problemResponses } },
    preValidation: multipartToBody,
  }, async (request, reply) => {
    const b = batcherFor(app, 'describe', app.m6.batchers.describe);
    const arrived = b.expect();
    let pixels: Float32Array;
    try {
      pixels = await requiredPixels(app, request, request.body.image);
    } finally {
      arrived();
    }
    if (request.body.stream === true) return streamText(app, request, reply, { task: 'describe', image: pixels }, request.body.maxNewTokens);
    return textOut(await runJob(app, request, reply, b, { pixels, ...(request.body.maxNewTokens !== undefined ? { maxNewTokens: request.body.maxNewTokens } : {}) }), reply);
  });

  app.post('/answer', {
    schema: { summary: 'Answer a question, about a photo or from text alone', tags: ['tasks'], consumes, body: AnswerBody, response: { 200: TextOut, ...problemResponses } },
    preValidation: multipartToBody,
  }, async (request, reply) => {
    const b = batcherFor(app, 'answer', app.m6.batchers.answer);
    const question = checkText(app, 'question', request.body.question);
    const bytes = imageBytes(request, request.body.image);
    const arrived = b.expect();
    let pixels: Float32Array | undefined;
    try {
      pixels = bytes !== undefined ? await pixelsOf(app, bytes) : undefined;
    } finally {
      arrived();
    }
    if (request.body.stream === true) return streamText(app, request, reply, { task: 'answer', question, ...(pixels !== undefined ? { image: pixels } : {}) }, request.body.maxNewTokens);
    return textOut(await runJob(app, request, reply, b, { question, ...(pixels !== undefined ? { pixels } : {}), ...(request.body.maxNewTokens !== undefined ? { maxNewTokens: request.body.maxNewTokens } : {}) }), reply);
  });
};
