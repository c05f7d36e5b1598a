// The shapes of the API, once: request bodies and responses of every route, as TypeBox schemas
// (JSON Schema the validator and /docs read; the handlers' types are derived from them).
import { Type, type Static } from 'typebox';

export const Problem = Type.Object({
  type: Type.String(), title: Type.String(), status: Type.Integer(), detail: Type.String(),
  errorType: Type.String({ description: 'validation, too_large, unsupported_media_type, overloaded, timeout, unauthorized, not_found, …' }),
  field: Type.Optional(Type.String({ description: 'the request field that was wrong' })), instance: Type.Optional(Type.String()),
}, { $id: 'Problem', description: 'RFC 9457 problem details (application/problem+json)' });

/** Every route's error answers. */
export const problemResponses = { '4xx': Type.Ref('Problem'), '5xx': Type.Ref('Problem') } as const;

const image = Type.String({ description: 'the image file\'s bytes, base64 (a data: URL prefix is allowed); or send multipart/form-data with a file part named image', contentEncoding: 'base64' });
const maxNewTokens = Type.Integer({ minimum: 1, maximum: 256, description: 'most tokens to write (default: the task\'s)' });
const stream = Type.Boolean({ description: 'stream tokens as server-sent events (event: token, then event: done)' });

export const DescribeBody = Type.Object({ image: Type.Optional(image), maxNewTokens: Type.Optional(maxNewTokens), stream: Type.Optional(stream) }, { additionalProperties: false });
export const AnswerBody = Type.Object({
  question: Type.String({ description: 'the question (not empty; at most the model\'s text length in tokens)' }),
  image: Type.Optional(image), maxNewTokens: Type.Optional(maxNewTokens), stream: Type.Optional(stream),
}, { additionalProperties: false });
export const TextOut = Type.Object({
  text: Type.String(), tokenIds: Type.Array(Type.Integer()), logProb: Type.Number(), finishReason: Type.String(), ms: Type.Number({ description: 'server time' }),
});

export const DesignBody = Type.Object({
  prompt: Type.String({ description: 'what to design (not empty; at most the model\'s text length in tokens)' }),
  n: Type.Optional(Type.Integer({ minimum: 1, description: 'images (default 1; at most the server\'s bound, 4 unless set)' })),
  seed: Type.Optional(Type.Integer({ minimum: 0, maximum: 2 ** 31 - 1 })),
  // From 0.01: a smaller one overflows the logits to inf (NaN probabilities).
  temperature: Type.Optional(Type.Number({ minimum: 0.01, maximum: 10 })),
  topK: Type.Optional(Type.Integer({ minimum: 1 })),
  topP: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 1 })),
  guidance: Type.Optional(Type.Number({ minimum: 0, maximum: 20, description: 'classifier-free guidance scale (1 = none; default 3 for a model trained with design prompts dropped, else 1); > 1 costs twice the compute' })),
}, { additionalProperties: false });
export const DesignOut = Type.Object({
  images: Type.Array(Type.Object({ png: Type.String({ contentEncoding: 'base64' }), width: Type.Integer(), height: Type.Integer(), codes: Type.Array(Type.Integer()) })),
  ms: Type.Number(),
});

export const EmbedBody = Type.Object({ text: Type.Optional(Type.String()), image: Type.Optional(image) }, { additionalProperties: false, description: 'exactly one of text and image' });
export const EmbedOut = Type.Object({ vector: Type.Array(Type.Number()), dim: Type.Integer(), ms: Type.Number() });

export const SearchBody = Type.Object({
  text: Type.Optional(Type.String({ description: 'a text query: "red polka-dot dress"' })),
  image: Type.Optional(image),
  item: Type.Optional(Type.String({ minLength: 1, description: 'the id of an item of the index: items like it' })),
  where: Type.Optional(Type.String({ description: "a filter over the catalog's columns (id, title, label, price, imagePath): label = 'dress' AND price < 40" })),
  k: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, description: 'results (default 10)' })),
  column: Type.Optional(Type.Union([Type.Literal('fused'), Type.Literal('image'), Type.Literal('text')], { description: 'which vectors to search (default: image for a text query, else fused)' })),
  exact: Type.Optional(Type.Boolean({ description: 'skip the ANN index: an exact scan' })),
}, { additionalProperties: false, description: 'exactly one of text, image and item' });
export const SearchOut = Type.Object({
  results: Type.Array(Type.Object({
    id: Type.String(), score: Type.Number({ description: 'dot product of unit vectors (cosine similarity)' }), title: Type.String(), label: Type.String(),
    price: Type.Union([Type.Number(), Type.Null()]),
    attributes: Type.Record(Type.String(), Type.String(), { description: 'the catalog\'s attribute columns of the item (colour, pattern…), as indexed' }),
    image: Type.Union([Type.String(), Type.Null()], { description: 'URL of the item\'s image on this server (GET /v1/items/{id}/image), null when it has none the server may serve' }),
  })),
  latencyMs: Type.Number({ description: 'server time' }),
  store: Type.Union([Type.Literal('lancedb'), Type.Literal('exact')]),
  exact: Type.Boolean({ description: 'the search was an exact scan (the exact store, no ANN index on the column yet, or exact: true)' }),
});

const itemId = (description: string) => Type.String({ minLength: 1, maxLength: 256, description });
export const RecommendBody = Type.Object({
  user: Type.Optional(itemId('a shopper of the data\'s interactions: their whole history is the query')),
  history: Type.Optional(Type.Array(itemId('an item id'), { maxItems: 1000, description: 'a session\'s item ids, oldest first (items the run does not know are skipped)' })),
  similar: Type.Optional(itemId('an item id: items like it')),
  complement: Type.Optional(itemId('an item id: items of other categories that go with it (co-occurrence in the data\'s baskets and sessions)')),
  where: Type.Optional(Type.String({ description: "a filter over the catalog's columns (needs the index): label = 'dress' AND price < 40" })),
  k: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, description: 'results (default 10)' })),
}, { additionalProperties: false, description: 'exactly one of user, history, similar and complement' });
export const RecommendOut = Type.Object({
  results: Type.Array(Type.Object({
    id: Type.String(), score: Type.Number({ description: 'higher is better: the run\'s item score for user/history, the cosine of item vectors for similar; complements seen together in the data score 2 + cosine' }),
    title: Type.String({ description: 'from the catalog index (empty without one)' }), label: Type.String(), price: Type.Union([Type.Number(), Type.Null()]),
    image: Type.Union([Type.String(), Type.Null()], { description: 'URL of the item\'s image on this server (GET /v1/items/{id}/image), null without the index or an image it may serve' }),
  })),
  latencyMs: Type.Number({ description: 'server time' }),
});

const exampleImage = Type.Union([Type.String(), Type.Null()], { description: 'URL of the example\'s image on this server, or null' });
export const ExamplesOut = Type.Object({
  describe: Type.Array(Type.Object({ id: Type.String(), image: exampleImage, text: Type.String({ description: 'the data\'s description (the reference)' }) })),
  answer: Type.Array(Type.Object({ id: Type.String(), image: exampleImage, question: Type.String(), text: Type.String({ description: 'the data\'s answer (the reference)' }) })),
  design: Type.Array(Type.Object({ id: Type.String(), prompt: Type.String() })),
  search: Type.Array(Type.Object({ id: Type.String(), image: exampleImage, text: Type.String() })),
  recommend: Type.Array(Type.Object({ id: Type.String({ description: 'a shopper of the data (a user query)' }), items: Type.Integer({ description: 'their history\'s length' }) })),
  reason: Type.Optional(Type.String({ description: 'why there are no examples, when there are none' })),
});

export const ItemParams = Type.Object({ id: Type.String({ minLength: 1 }) });

export type DescribeBody = Static<typeof DescribeBody>;
export type AnswerBody = Static<typeof AnswerBody>;
export type DesignBody = Static<typeof DesignBody>;
export type EmbedBody = Static<typeof EmbedBody>;
export type SearchBody = Static<typeof SearchBody>;
export type RecommendBody = Static<typeof RecommendBody>;
export type ExamplesOut = Static<typeof ExamplesOut>;
