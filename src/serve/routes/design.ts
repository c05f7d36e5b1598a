// POST /v1/design: prompt → n PNGs (base64), seeded, with the sampling options.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { DESIGN_SAMPLING } from '../../tasks/instructions.js';
import { DesignBody, DesignOut, problemResponses } from '../schemas.js';
import { HttpProblem } from '../problem.js';
import { batcherFor, checkText, elapsed, runJob } from './common.js';

export const designRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.post('/design', {
    schema: { summary: 'Design product images from a prompt', tags: ['tasks'], body: DesignBody, response: { 200: DesignOut, ...problemResponses } },
  }, async (request, reply) => {
    const b = batcherFor(app, 'design', app.m6.batchers.design);
    const body = request.body;
    const prompt = checkText(app, 'prompt', body.prompt);
    const n = body.n ?? 1;
    const most = app.m6.limits.maxDesignImages;
    if (n > most) throw new HttpProblem(422, 'validation', `n: ${n} images asked for; this server designs at most ${most} per request`, 'n');
    if (body.guidance !== undefined && body.guidance !== 1 && app.m6.pipeline.config.designPromptDropout === 0) {
      throw new HttpProblem(422, 'validation', `guidance: this model was trained without dropping design prompts, so it cannot be guided; give 1 or leave it out`, 'guidance');
    }
    const sampling = {
      temperature: body.temperature ?? DESIGN_SAMPLING.temperature, topK: body.topK ?? DESIGN_SAMPLING.topK, topP: body.topP ?? DESIGN_SAMPLING.topP,
      ...(body.guidance !== undefined ? { guidance: body.guidance } : {}),
    };
    const out = await runJob(app, request, reply, b, { prompt, n, seed: body.seed ?? 0, sampling });
    return { images: out.images.map((im) => ({ png: im.png.toString('base64'), width: im.size, height: im.size, codes: Array.from(im.codes) })), ms: elapsed(reply) };
  });
};
