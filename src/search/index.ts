// The catalog index: `openCatalogIndex(uri, { store, weights })`, then upsert / remove / search / get / info.
export {
  openCatalogIndex, StaleIndexError, CatalogIndexError, IndexClosedError, DEFAULT_ANN, annPartitions, annMinRows,
  type CatalogIndex, type StoreKind, type IndexProvenance, type IndexMeta, type IndexInfo, type AnnOptions, type AnnType, type AnnColumnInfo,
  type OpenOptions, type UpsertOptions, type UpsertReport, type SearchOptions, type SearchHit,
} from './catalogIndex.js';
export { F, parseFilter, filterToSql, compileFilter, validateFilter, FilterError, FILTER_COLUMNS, type Filter, type FilterColumn, type FilterColumns } from './filter.js';
export { formatBadIndexRow, UNIT_TOLERANCE, VECTOR_COLUMNS, type CatalogRow, type StoredRow, type BadIndexRow, type BadIndexRowReason, type VectorColumn } from './rows.js';
export { indexCatalog, catalogColumns, provenanceOf, type IndexCatalogOptions, type IndexCatalogReport } from './indexCatalog.js';
export { openQueryIndex, searchCatalog, defaultColumn, SearchQueryError, type SearchQuery, type QueryEmbedder, type CatalogQueryOptions } from './query.js';
export { recommendItems, firstPassing, complementSource, complementScores, COMPLEMENT_MIX, directScorer, RecommendQueryError, type RecommendScorer, type RecommendQuery, type RecommendHit, type RecommendContext, type RecommendCallOptions, type ComplementSource } from './recommendations.js';
export { readShopperData, readItemLabels, userHistory, someShoppers, complementsFrom, type ShopperData } from './shopperData.js';
export { coOccurrence, scoreCoOccurrence, itemCounts, CO_OCCURRENCE_DECAY, type CoOccurrence } from './coOccurrence.js';
