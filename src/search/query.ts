// A query to results, once for every door: `m6 search` and `POST /v1/search` both open the index
// with `openQueryIndex` and answer with `searchCatalog`. The caller says how a text or an image is
// embedded (the CLI calls the pipeline, the server goes through its embed batcher), so batching
// stays the server's business and the query logic stays here.
import type { EmbedResult, ImageInput, Pipeline } from '../pipelines/index.js';
import { InputError } from '../torch/inputError.js';
import { openCatalogIndex, StaleIndexError, type CatalogIndex, type SearchHit, type StoreKind } from './catalogIndex.js';
import { provenanceOf } from './indexCatalog.js';
import type { VectorColumn } from './rows.js';

/** What to search by: a text, an image (a file path or the model's pixels), or an item of the index. */
export type SearchQuery = { text: string } | { image: ImageInput } | { item: string };

/** Embeds one text or image; an `ok: false` result is the user's input problem. */
export type QueryEmbedder = (input: { text: string } | { image: ImageInput }) => Promise<EmbedResult>;

export interface CatalogQueryOptions {
  k: number;
  /** The SQL-like filter a user writes (`label = 'dress' AND price < 40`). */
  where?: string;
  /** Default: `image` for a text (text → image search), `fused` for an image or an item. */
  column?: VectorColumn;
  exact?: boolean;
}

/** A query the index cannot answer: `field` names what was wrong (text, image, item). */
export class SearchQueryError extends InputError {
  override name = 'SearchQueryError';
  constructor(readonly field: 'text' | 'image' | 'item', message: string) {
    super(message);
  }
}

/**
 * Opens the index at `uri` to be queried with `pipeline`'s vectors, and refuses at once, with the
 * index's own message, when it was built by other weights: a server finds out at startup, not at
 * its first search.
 */
export async function openQueryIndex(uri: string, pipeline: Pipeline, o: { store?: StoreKind } = {}): Promise<CatalogIndex> {
  const index = await openCatalogIndex(uri, { ...(o.store !== undefined ? { store: o.store } : {}), weights: await provenanceOf(pipeline), create: false });
  const refused = (await index.info()).refused;
  if (refused !== undefined) {
    await index.close();
    throw new StaleIndexError(refused);
  }
  return index;
}

/** The vectors a query searches when none is asked for: a text finds images, an image or an item finds items. */
export function defaultColumn(q: SearchQuery): VectorColumn {
  return 'text' in q ? 'image' : 'fused';
}

/** The query's vector: a text or an image embedded by `embed`, or an item's own stored vector. */
async function queryVector(index: CatalogIndex, q: SearchQuery, column: VectorColumn, embed: QueryEmbedder): Promise<Float32Array> {
  if ('item' in q) {
    const [row] = await index.get([q.item]);
    if (row === undefined) throw new SearchQueryError('item', `item: no item '${q.item}' in the index ${index.uri}`);
    return row[column];
  }
  const r = await embed(q);
  if (!r.ok) throw new SearchQueryError('text' in q ? 'text' : 'image', `${'text' in q ? 'text' : 'image'}: ${r.error}`);
  return r.vector;
}

/** The k nearest items to the query that pass the filter; an item query leaves the item itself out. */
export async function searchCatalog(index: CatalogIndex, q: SearchQuery, embed: QueryEmbedder, o: CatalogQueryOptions): Promise<SearchHit[]> {
  const column = o.column ?? defaultColumn(q);
  const vector = await queryVector(index, q, column, embed);
  // The item is its own nearest neighbour: ask for one more and drop it.
  const item = 'item' in q ? q.item : undefined;
  const hits = await index.search(vector, {
    k: item !== undefined ? o.k + 1 : o.k, vectorColumn: column,
    ...(o.where !== undefined ? { where: o.where } : {}), ...(o.exact === true ? { exact: true } : {}),
  });
  return (item !== undefined ? hits.filter((h) => h.id !== item) : hits).slice(0, o.k);
}
