// Images as clients send them — a multipart file part named `image`, or base64 in JSON — turned
// into the model's prepared pixels. Only the bytes sent are decoded: a client can never name a
// file on the server's disk or a URL for it to fetch.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ImageDecodeError } from '../data/image.js';
import { HttpProblem, imageProblem } from './problem.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The bytes of the multipart file part named `image`, when the request was multipart. */
    upload?: Buffer;
  }
}

const BASE64 = /^[A-Za-z0-9+/\r\n]*={0,2}$/;

/**
 * preValidation hook: a multipart request's fields become its body (validated by the route's
 * schema like JSON) and its `image` file part `request.upload`. A file part of another name is a 400.
 */
export async function multipartToBody(request: FastifyRequest): Promise<void> {
  if (!request.isMultipart()) return;
  const body: Record<string, string> = {};
  try {
    for await (const part of request.parts()) {
      if (part.type === 'file') {
        if (part.fieldname !== 'image') throw new HttpProblem(400, 'validation', `${part.fieldname}: unexpected file part (send the image as a part named image)`, part.fieldname);
        request.upload = await part.toBuffer();
      } else {
        body[part.fieldname] = String(part.value);
      }
    }
  } catch (err) {
    // busboy's parse errors (a body cut off, a bad boundary) carry no status: they are the client's.
    if (err instanceof HttpProblem || typeof (err as { statusCode?: unknown }).statusCode === 'number') throw err;
    throw new HttpProblem(400, 'bad_multipart', `malformed multipart body: ${(err as Error).message}`);
  }
  request.body = body;
}

/** The image bytes of a request: its upload, or its base64 `image` field; undefined when it has neither. */
export function imageBytes(request: FastifyRequest, base64: string | undefined): Buffer | undefined {
  if (request.upload !== undefined) return request.upload;
  if (base64 === undefined) return undefined;
  const data = base64.startsWith('data:') ? base64.slice(base64.indexOf(',') + 1) : base64;
  if (!BASE64.test(data)) throw new HttpProblem(400, 'validation', 'image: not base64 (send the file\'s bytes base64-encoded, or as multipart)', 'image');
  return Buffer.from(data, 'base64');
}

/** Decodes an image's bytes to the model's pixels (on the server's image workers); not an image is 415, too big or cut off 422. */
export async function pixelsOf(app: FastifyInstance, bytes: Buffer): Promise<Float32Array> {
  try {
    return (await app.m6.images.loadBytes(bytes, { size: app.m6.pipeline.config.imageSize, maxPixels: app.m6.limits.maxPixels })).data;
  } catch (err) {
    if (err instanceof ImageDecodeError) throw imageProblem(err, 'image');
    throw err;
  }
}

/** The request's image as pixels, or a 400 when it has none. */
export async function requiredPixels(app: FastifyInstance, request: FastifyRequest, base64: string | undefined): Promise<Float32Array> {
  const bytes = imageBytes(request, base64);
  if (bytes === undefined) throw new HttpProblem(400, 'validation', 'image: required (base64 in JSON, or a multipart file part named image)', 'image');
  return pixelsOf(app, bytes);
}
