// API keys: with a key set, every route of the scope this hook is added to needs
// `Authorization: Bearer <key>`. Both sides are hashed first so the comparison is constant-time
// whatever the lengths (timingSafeEqual needs equal lengths and would leak the key's otherwise).
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { HttpProblem } from './problem.js';

const digest = (s: string) => createHash('sha256').update(s).digest();

/** An onRequest hook that refuses requests without the key (401). */
export function bearerAuth(apiKey: string): (request: FastifyRequest) => Promise<void> {
  const want = digest(apiKey);
  return async (request) => {
    const header = request.headers.authorization ?? '';
    const m = /^Bearer\s+(.+)$/i.exec(header);
    if (m === null || !timingSafeEqual(digest(m[1]!.trim()), want)) {
      throw new HttpProblem(401, 'unauthorized', m === null ? 'this server needs an API key: send Authorization: Bearer <key>' : 'the API key is not valid', undefined, { 'www-authenticate': 'Bearer' });
    }
  };
}
