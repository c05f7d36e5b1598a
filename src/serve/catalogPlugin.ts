// The catalog index (`m6 serve --index I`), opened once at startup and shared by /v1/search and the
// item thumbnails and /v1/recommend's titles and filters: decorates `app.catalog`, closed on close. An index
// built by other weights is refused here, with the index's own message, so the server never starts
// answering searches it cannot answer. Without --index, `app.catalog` is null and the routes say so.
import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import type { Pipeline } from '../pipelines/index.js';
import { openQueryIndex, type CatalogIndex, type VectorColumn } from '../search/index.js';
import { HttpProblem } from './problem.js';

export interface ServeCatalog {
  index: CatalogIndex;
  /** Where the catalog's images are: a row's image outside it is never served. */
  imageRoot: string | undefined;
  /** Vector columns with no ANN index (at startup): their searches are exact scans. */
  exactColumns: ReadonlySet<VectorColumn>;
}

declare module 'fastify' {
  interface FastifyInstance {
    catalog: ServeCatalog | null;
  }
}

export interface CatalogPluginOptions {
  pipeline: Pipeline;
  /** The index's folder or URI; none: search is not served. */
  uri?: string;
  imageRoot?: string;
}

export const catalogPlugin = fp(async (app: FastifyInstance, o: CatalogPluginOptions) => {
  if (o.uri === undefined) {
    app.decorate('catalog', null);
    return;
  }
  const index = await openQueryIndex(o.uri, o.pipeline);
  const info = await index.info();
  // The exact store reports every column as 'none'.
  const exactColumns = new Set(info.ann.columns.filter((c) => c.state === 'none').map((c) => c.column));
  app.decorate('catalog', { index, imageRoot: o.imageRoot, exactColumns });
  app.log.info(`catalog index ${o.uri}: ${info.store}, ${info.rows} rows; images under ${o.imageRoot ?? '(no image root: thumbnails off)'}`);
  app.addHook('onClose', async () => { await index.close(); });
}, { name: 'm6-catalog', fastify: '5.x' });

/** The catalog, or a 404 saying the server was started without one. */
export function catalogOf(app: FastifyInstance): ServeCatalog {
  if (app.catalog === null) throw new HttpProblem(404, 'no_index', 'this server was started without a catalog index: start it with m6 serve --run RUN --index INDEX (m6 index build makes one)');
  return app.catalog;
}
