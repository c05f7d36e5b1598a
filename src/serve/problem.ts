// Every error the server answers is RFC 9457 problem+json: { type, title, status, detail, field? }
// plus TGI's `errorType`, one handler mapping what went wrong to its status — schema errors 400
// naming the field, bodies over the limit 413, media that is not an image 415, inputs the model
// cannot take 422, a full queue 429 + Retry-After, deadlines 503/504. A bug is a 500 that says
// nothing of the server's insides (the log has the stack); no request can crash the process.
import fp from 'fastify-plugin';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { InputError } from '../torch/inputError.js';
import { ImageDecodeError } from '../data/image.js';
import { AbortedError, ClosedError, DeadlineError, QueueFullError } from './batcher.js';

/** An error with the status and words to answer it with. */
export class HttpProblem extends Error {
  constructor(readonly status: number, readonly errorType: string, detail: string, readonly field?: string, readonly headers: Record<string, string> = {}) {
    super(detail);
    this.name = 'HttpProblem';
  }
}

const TITLES: Readonly<Record<number, string>> = Object.freeze({
  400: 'Bad Request', 401: 'Unauthorized', 404: 'Not Found', 405: 'Method Not Allowed', 406: 'Not Acceptable', 413: 'Content Too Large', 415: 'Unsupported Media Type',
  422: 'Unprocessable Content', 429: 'Too Many Requests', 499: 'Client Closed Request', 500: 'Internal Server Error', 503: 'Service Unavailable', 504: 'Gateway Timeout',
});

/** The field a schema error is about: `/n` → n, a missing property → its name. */
function validationField(err: FastifyError): string | undefined {
  const v = err.validation?.[0];
  if (v === undefined) return undefined;
  const missing = (v.params as { missingProperty?: string; additionalProperty?: string } | undefined);
  const path = v.instancePath.replace(/^\//, '').replace(/\//g, '.');
  const extra = missing?.missingProperty ?? missing?.additionalProperty;
  return [path, extra].filter((s) => s !== undefined && s !== '').join('.') || undefined;
}

/** What to answer for `err`. */
export function toProblem(err: unknown): HttpProblem {
  if (err instanceof HttpProblem) return err;
  if (err instanceof QueueFullError) return new HttpProblem(429, 'overloaded', err.message, undefined, { 'retry-after': String(err.retryAfterS) });
  if (err instanceof DeadlineError) return new HttpProblem(err.stage === 'queued' ? 503 : 504, 'timeout', err.message, undefined, err.stage === 'queued' ? { 'retry-after': '1' } : {});
  if (err instanceof ClosedError) return new HttpProblem(503, 'shutting_down', err.message, undefined, { 'retry-after': '1' });
  if (err instanceof AbortedError) return new HttpProblem(499, 'cancelled', err.message);
  if (err instanceof ImageDecodeError) return imageProblem(err, 'image');
  if (err instanceof InputError) return new HttpProblem(422, 'validation', err.message);
  const e = err as FastifyError;
  if (e.validation !== undefined) {
    const field = validationField(e);
    return new HttpProblem(400, 'validation', `${field ?? e.validationContext ?? 'body'}: ${e.message.replace(/^(body|querystring|params|headers)\/?\S* /, '')}`, field);
  }
  if (e.code === 'FST_ERR_CTP_BODY_TOO_LARGE' || e.code === 'FST_REQ_FILE_TOO_LARGE' || e.statusCode === 413) return new HttpProblem(413, 'too_large', e.message);
  if (e.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' || e.statusCode === 415) return new HttpProblem(415, 'unsupported_media_type', 'unsupported content-type: send application/json or multipart/form-data');
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) return new HttpProblem(e.statusCode, 'bad_request', e.message);
  return new HttpProblem(500, 'internal', 'internal error (the server log has the details)');
}

/** An upload that is not an image is 415; one the server will not decode (too many pixels, cut off) is 422. */
export function imageProblem(err: ImageDecodeError, field: string): HttpProblem {
  const status = err.reason === 'not an image' || err.reason === 'empty file' ? 415 : 422;
  return new HttpProblem(status, status === 415 ? 'unsupported_media_type' : 'validation', `${field}: ${err.reason}: ${err.detail}`, field);
}

export function sendProblem(reply: FastifyReply, p: HttpProblem, request?: FastifyRequest): FastifyReply {
  return reply.code(p.status).headers(p.headers).type('application/problem+json').send({
    type: 'about:blank', title: TITLES[p.status] ?? 'Error', status: p.status, detail: p.message, errorType: p.errorType,
    ...(p.field !== undefined ? { field: p.field } : {}), ...(request !== undefined ? { instance: request.url } : {}),
  });
}

/** Sets the error and not-found handlers of the whole app. */
export const problemPlugin = fp(async (app: FastifyInstance) => {
  app.setErrorHandler((err, request, reply) => {
    const p = toProblem(err);
    if (p.status >= 500 && p.errorType === 'internal') request.log.error({ err }, 'request failed');
    return sendProblem(reply, p, request);
  });
  app.setNotFoundHandler((request, reply) => sendProblem(reply, new HttpProblem(404, 'not_found', `no route ${request.method} ${request.url.split('?')[0]}`), request));
}, { name: 'm6-problem', fastify: '5.x' });
