// Retrieval metrics: recall@k from a query × item similarity matrix, with relevance given per query
// (e.g. items with the same attributes count as relevant for a text query).
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';

/**
 * Fraction of queries with at least one relevant item among their top k. `relevant[q]` lists the
 * relevant item indices of query q. Ties are broken by libtorch's topk.
 */
export function recallAtK(similarity: Tensor, relevant: readonly (readonly number[])[], ks: readonly number[] = [1, 5, 10]): Record<string, number> {
  const [Q, I] = similarity.shape;
  if (relevant.length !== Q) throw new RangeError(`recallAtK: ${relevant.length} relevance lists for ${Q} queries`);
  const kmax = Math.min(Math.max(...ks), I);
  const top = torch.scope(() => similarity.topk(kmax, 1).indices.toArray() as number[][]);
  const out: Record<string, number> = {};
  for (const k of ks) {
    let hits = 0;
    top.forEach((row, q) => {
      const rel = new Set(relevant[q]);
      if (row.slice(0, k).some((i) => rel.has(i))) hits++;
    });
    out[`recall@${k}`] = Q ? hits / Q : 0;
  }
  return out;
}
