// What every task route does around its batcher: refuse a task the run does not serve, check a
// text field, submit with the request's deadline and a signal that fires when the client goes
// away (its queued work is dropped), and turn a per-input failure into a 422.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { PipelineTask } from '../../pipelines/index.js';
import type { Batcher } from '../batcher.js';
import { HttpProblem } from '../problem.js';

/** The task's batcher, or a 404 saying why the run does not serve it. */
export function batcherFor<I, O>(app: FastifyInstance, task: PipelineTask, b: Batcher<I, O> | undefined): Batcher<I, O> {
  if (app.m6.closing) throw new HttpProblem(503, 'shutting_down', 'the server is shutting down', undefined, { 'retry-after': '1' });
  if (b === undefined) throw new HttpProblem(404, 'task_not_served', app.m6.pipeline.whyNot(task) ?? `${task} is not served`);
  return b;
}

/** A prompt or question the model can read: not empty, at most its text positions. */
export function checkText(app: FastifyInstance, field: string, value: string): string {
  if (value.trim() === '') throw new HttpProblem(422, 'validation', `${field}: empty`, field);
  const max = app.m6.pipeline.config.maxTextLen;
  // Characters first: the tokenizer never sees a megabyte of text.
  const tokens = value.length > 16 * max ? Infinity : app.m6.pipeline.tokenizer.encode(value).length;
  if (tokens > max) throw new HttpProblem(422, 'validation', `${field}: too long (${Number.isFinite(tokens) ? `${tokens} tokens` : `${value.length} characters`}; the model reads at most ${max} tokens)`, field);
  return value;
}

/** An AbortSignal that fires when the client disconnects before its answer is sent. */
export function clientGone(request: FastifyRequest, reply: FastifyReply): AbortSignal {
  const ac = new AbortController();
  reply.raw.once('close', () => { if (!reply.raw.writableFinished) ac.abort(); });
  request.raw.once('aborted', () => ac.abort());
  return ac.signal;
}

/** Runs one job through its batcher; a result with ok: false is the client's input problem (422). */
export async function runJob<I, O extends { ok: boolean }>(app: FastifyInstance, request: FastifyRequest, reply: FastifyReply, b: Batcher<I, O>, job: I): Promise<Extract<O, { ok: true }>> {
  const out = await b.submit(job, { signal: clientGone(request, reply), timeoutMs: app.m6.limits.requestTimeoutMs });
  if (!out.ok) throw new HttpProblem(422, 'validation', (out as unknown as { error: string }).error);
  return out as Extract<O, { ok: true }>;
}

/** Milliseconds since the request arrived. */
export const elapsed = (reply: FastifyReply): number => Math.round(reply.elapsedTime * 10) / 10;
