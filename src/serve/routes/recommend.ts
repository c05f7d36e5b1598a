// POST /v1/recommend: a shopper (their whole history in the data), a session's items, items like
// one, or items of other categories that go with one → the k best items that pass a filter. The
// logic is search/'s recommendItems, the same as `m6 recommend`; the model's scores are queued on
// the recommend batcher, on the lane every task's model work shares, so concurrent sessions score
// as one batch and never run beside a describe or a search's embedding. With the catalog index
// (app.catalog) results carry titles and thumbnails and `where` filters them; without, ids, scores
// and the labels of the data's manifest.
import type { FastifyInstance } from 'fastify';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { FilterError, RecommendQueryError, recommendItems, userHistory, type RecommendQuery, type RecommendScorer } from '../../search/index.js';
import type { ServeCatalog } from '../catalogPlugin.js';
import { imageUnder } from '../images.js';
import { HttpProblem } from '../problem.js';
import { RecommendBody, RecommendOut, problemResponses } from '../schemas.js';
import { batcherFor, clientGone, elapsed } from './common.js';

const QUERY_FIELDS = ['user', 'history', 'similar', 'complement'] as const;

/** The body's one query, a user's read from the data; 400 naming the field unless exactly one is given. */
async function queryOf(app: FastifyInstance, body: RecommendBody): Promise<RecommendQuery> {
  const given = QUERY_FIELDS.filter((f) => body[f] !== undefined);
  if (given.length !== 1) throw new HttpProblem(400, 'validation', `body: send exactly one of user, history, similar and complement (got ${given.join(' and ') || 'none'})`, given[1] ?? 'user');
  if (body.history !== undefined) return { history: body.history };
  if (body.similar !== undefined) return { similar: body.similar };
  if (body.complement !== undefined) return { complement: body.complement };
  return { history: userHistory(await app.shoppers.data('user'), body.user!) };
}

/** The URL of a result's thumbnail, when the server has the index and may serve the image. */
const imageUrl = (c: ServeCatalog | null, id: string, path: string): string | null => (c !== null && path !== '' && imageUnder(path, c.imageRoot) ? `/v1/items/${encodeURIComponent(id)}/image` : null);

export const recommendRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.post('/recommend', {
    schema: { summary: 'Recommend items for a shopper or a session, like an item, or that go with one', tags: ['search'], body: RecommendBody, response: { 200: RecommendOut, ...problemResponses } },
  }, async (request, reply) => {
    const b = batcherFor(app, 'recommend', app.m6.batchers.recommend);
    const body = request.body;
    const signal = clientGone(request, reply);
    const submit = { signal, timeoutMs: app.m6.limits.requestTimeoutMs };
    const scorer: RecommendScorer = { history: (items) => b.submit({ history: items }, submit), similarities: (item) => b.submit({ similarTo: item }, submit) };
    const catalog = app.catalog;
    try {
      const query = await queryOf(app, body);
      const complements = 'complement' in query ? await app.shoppers.complements() : undefined;
      // Without the index, the labels come from the data's manifest (when it can be read).
      const labels = catalog === null ? (await app.shoppers.tryData())?.labels : undefined;
      const hits = await recommendItems({ pipeline: app.m6.pipeline, scorer, ...(catalog !== null ? { index: catalog.index } : {}), ...(labels !== undefined ? { labels } : {}), ...(complements !== undefined ? { complements } : {}) },
        query, { k: body.k ?? 10, ...(body.where !== undefined ? { where: body.where } : {}) });
      return { results: hits.map((h) => ({ id: h.id, score: h.score, title: h.title, label: h.label, price: h.price, image: imageUrl(catalog, h.id, h.imagePath) })), latencyMs: elapsed(reply) };
    } catch (err) {
      if (err instanceof RecommendQueryError) throw new HttpProblem(422, 'validation', err.message, err.field);
      if (err instanceof FilterError) throw new HttpProblem(422, 'validation', `where: ${err.message}`, 'where');
      throw err;
    }
  });
};
