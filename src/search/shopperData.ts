// What recommendations read from the data besides the run, once for every door (`m6 recommend`
// and the server): shoppers' histories (a `user` query is their whole history, oldest first) and
// what complements are learnt from — baskets and sessions, and each item's category (the data's
// labels, else the index's). The server reads it once and keeps it; the CLI reads it per call.
import type { DatasetSpec } from '../data/datasetSpec.js';
import type { ItemVocabulary } from '../data/itemVocabulary.js';
import { readInteractions } from '../data/interactions.js';
import { readDataset } from '../data/manifest.js';
import type { CatalogIndex } from './catalogIndex.js';
import { complementSource, RecommendQueryError, type ComplementSource } from './recommendations.js';

export interface ShopperData {
  /** Per shopper of the data's interactions, their items oldest first; undefined when the data has none. */
  histories: ReadonlyMap<string, readonly string[]> | undefined;
  /** The interactions file, for messages. */
  source: string | undefined;
  /** Baskets (outfits, orders) and sessions: the groups complements are counted over. */
  groups: ReadonlyArray<readonly string[]>;
  /** Item id → category from the data's manifest (empty without one: the index's labels are used then). */
  labels: ReadonlyMap<string, string>;
}

/** Reads the spec's interactions, baskets and (with a manifest) item labels; `historiesOnly`: the interactions alone (a `user` query needs no more). */
export async function readShopperData(spec: DatasetSpec, o: { historiesOnly?: boolean } = {}): Promise<ShopperData> {
  const sessions = spec.interactions !== undefined ? await readInteractions(spec.interactions) : undefined;
  const baskets = spec.baskets !== undefined && o.historiesOnly !== true ? await readInteractions(spec.baskets) : undefined;
  // Baskets (outfits, orders) say what goes together; without them, shoppers' sessions do (as m6 eval --tasks complement judges it).
  const groups = [...((baskets ?? sessions)?.sequences.values() ?? [])];
  const labels = o.historiesOnly !== true ? await readItemLabels(spec) : new Map<string, string>();
  return { histories: sessions?.sequences, source: sessions?.source, groups, labels };
}

/** Item id → category from the spec's manifest (empty without a manifest or a label column). */
export async function readItemLabels(spec: DatasetSpec): Promise<Map<string, string>> {
  const labels = new Map<string, string>();
  if (spec.manifest !== undefined || spec.shards !== undefined) for (const r of (await readDataset(spec)).rows) if (r.label !== undefined) labels.set(r.id, r.label);
  return labels;
}

/** The shopper's whole history; an unknown shopper is a RecommendQueryError on `user`. */
export function userHistory(data: ShopperData, user: string): readonly string[] {
  if (data.histories === undefined) throw new RecommendQueryError('user', 'user: the data has no interactions to find shoppers in (a dataset spec with "interactions")');
  const history = data.histories.get(user);
  if (history === undefined) throw new RecommendQueryError('user', `user: unknown user '${user}': ${data.source} has ${data.histories.size} users`);
  return history;
}

/** A few shopper ids with their history lengths, in the data's order (for a playground to offer). */
export function someShoppers(data: ShopperData, n: number): Array<{ id: string; items: number }> {
  return [...(data.histories ?? new Map<string, readonly string[]>())].slice(0, n).map(([id, items]) => ({ id, items: items.length }));
}

/**
 * The complement source over the run's items: co-occurrence in the data's groups, each item's
 * category from the data's labels or else the index's. Missing either is a RecommendQueryError on
 * `complement` saying what to give.
 */
export async function complementsFrom(items: ItemVocabulary, data: ShopperData, index: CatalogIndex | undefined): Promise<ComplementSource> {
  if (data.groups.length === 0) throw new RecommendQueryError('complement', 'complement: the data has no baskets or interactions to learn complements from (a dataset spec with "baskets" or "interactions")');
  let labels = data.labels;
  if (labels.size === 0 && index !== undefined) {
    const fromIndex = new Map<string, string>();
    for (const r of await index.get(items.ids)) if (r.label !== '') fromIndex.set(r.id, r.label);
    labels = fromIndex;
  }
  if (labels.size === 0) throw new RecommendQueryError('complement', 'complement: no item categories: give the catalog (a dataset spec with a manifest and a label column) or an index with labels');
  return complementSource(items, data.groups, (i) => labels.get(items.ids[i]!));
}
