// POST /v1/search (a text, an image or an item → the nearest catalog items, filtered) and
// GET /v1/items/:id/image (an index row's image: the thumbnails the results link to). The query
// logic is search/'s searchCatalog, the same as `m6 search`; a text or an image is embedded
// through the embed batcher, so concurrent searches share the model's batches with /v1/embed.
// /v1/recommend (routes/recommend.ts) links its results to the same thumbnails.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { defaultColumn, FilterError, SearchQueryError, searchCatalog, type QueryEmbedder, type SearchHit, type SearchQuery } from '../../search/index.js';
import { catalogOf, type ServeCatalog } from '../catalogPlugin.js';
import { imageUnder, sendImage } from '../images.js';
import { HttpProblem } from '../problem.js';
import { ItemParams, SearchBody, SearchOut, problemResponses } from '../schemas.js';
import { imageBytes, multipartToBody, pixelsOf } from '../uploads.js';
import { batcherFor, checkText, clientGone, elapsed } from './common.js';

/** The URL of an item's image, when the server may serve it. */
const imageUrl = (c: ServeCatalog, h: SearchHit): string | null => (imageUnder(h.imagePath, c.imageRoot) ? `/v1/items/${encodeURIComponent(h.id)}/image` : null);

export const searchRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.post('/search', {
    schema: { summary: 'Search the catalog by text, image or item', tags: ['search'], consumes: ['application/json', 'multipart/form-data'], body: SearchBody, response: { 200: SearchOut, ...problemResponses } },
    preValidation: multipartToBody,
  }, async (request, reply) => {
    const catalog = catalogOf(app);
    const body = request.body;
    const bytes = imageBytes(request, body.image);
    const given = (['text', 'image', 'item'] as const).filter((f) => (f === 'image' ? bytes : body[f]) !== undefined);
    if (given.length !== 1) throw new HttpProblem(400, 'validation', `body: send exactly one of text, image and item (got ${given.join(' and ') || 'none'})`, given[1] ?? 'text');
    const query: SearchQuery = body.text !== undefined ? { text: checkText(app, 'text', body.text) }
      : bytes !== undefined ? { image: await pixelsOf(app, bytes) } : { item: body.item! };
    const signal = clientGone(request, reply);
    // In the server every image query is pixels already decoded from the request.
    const embed: QueryEmbedder = (q) => batcherFor(app, 'embed', app.m6.batchers.embed)
      .submit('text' in q ? { text: q.text } : { pixels: q.image as Float32Array }, { signal, timeoutMs: app.m6.limits.requestTimeoutMs });
    const column = body.column ?? defaultColumn(query);
    let hits: SearchHit[];
    try {
      hits = await searchCatalog(catalog.index, query, embed, { k: body.k ?? 10, column, ...(body.where !== undefined ? { where: body.where } : {}), ...(body.exact === true ? { exact: true } : {}) });
    } catch (err) {
      if (err instanceof SearchQueryError) throw new HttpProblem(422, 'validation', err.message, err.field);
      if (err instanceof FilterError) throw new HttpProblem(422, 'validation', `where: ${err.message}`, 'where');
      throw err;
    }
    return {
      results: hits.map((h) => ({ id: h.id, score: h.score, title: h.title, label: h.label, price: h.price, attributes: h.attributes, image: imageUrl(catalog, h) })),
      latencyMs: elapsed(reply), store: catalog.index.store === 'lance' ? 'lancedb' as const : 'exact' as const,
      exact: body.exact === true || catalog.exactColumns.has(column),
    };
  });

  app.get('/items/:id/image', {
    schema: { summary: 'The image of a catalog item (an index row)', tags: ['search'], params: ItemParams, produces: ['image/*'], response: { ...problemResponses } },
  }, async (request, reply) => {
    const catalog = catalogOf(app);
    const [row] = await catalog.index.get([request.params.id]);
    return sendImage(request, reply, row?.imagePath, catalog.imageRoot, `item '${request.params.id}'`);
  });
};
