// What a configuration costs, without allocating it: the model is built on the `meta` device
// (shapes, no data), its parameters counted, and FLOPs and memory derived from the config.
import { M6Model, type Block } from './m6.js';
import { MoeLayer } from './moe.js';
import { activeExperts, imagePositions, type M6Config } from './config.js';

export interface ModelStats {
  name: string;
  totalParams: number;
  /** Parameters a token passes through: everything but the experts it is not routed to (a shared block once). */
  activeParams: number;
  expertParams: number;
  /** MoE layers a token passes through (a shared MoE block counts at every layer it runs). */
  moeLayers: number;
  experts: number;
  paramsPerExpert: number;
  /** The largest block's parameters outside its experts (attention, norms, a dense FFN, the router). */
  blockDenseParams: number;
  /** The tied token embedding / output head (vocabSize × dim). */
  embeddingParams: number;
  /** Sequence length the FLOP figures assume: image patches + maxTextLen unless given. */
  context: number;
  flopsPerTokenForward: number;
  flopsPerTokenTraining: number;
  bytes: {
    weights: { fp32: number; bf16: number };
    grads: { fp32: number; bf16: number };
    adamw: { fp32: number; bf16: number };   // two moments per parameter
  };
}

export interface ModelStatsOptions {
  /** Positions per row the FLOPs assume (default: image patches + maxTextLen). */
  context?: number;
}

/** A block's parameters outside its routed experts, and the experts a token passes through. */
function blockCounts(cfg: M6Config, block: Block): { dense: number; active: number } {
  const moe = block.ffn instanceof MoeLayer ? block.ffn : undefined;
  const experts = moe ? cfg.experts * moe.paramsPerExpert : 0;
  const dense = block.numParameters() - experts;
  return { dense, active: dense + (moe ? activeExperts(cfg) * moe.paramsPerExpert : 0) };
}

export function modelStats(cfg: M6Config, opts: ModelStatsOptions = {}): ModelStats {
  const model = new M6Model(cfg, { device: 'meta' });
  try {
    const totalParams = model.numParameters();
    const unique = [...new Set(model.layerBlocks)];
    const moeUnique = unique.filter((b) => b.ffn instanceof MoeLayer);
    const perExpert = moeUnique.length ? (moeUnique[0].ffn as MoeLayer).paramsPerExpert : 0;
    const expertParams = moeUnique.length * cfg.experts * perExpert;
    const activeParams = totalParams - moeUnique.length * (cfg.experts - activeExperts(cfg)) * perExpert;
    const counts = unique.map((b) => blockCounts(cfg, b));
    // Every layer's block runs for every token: a shared block's weights do the work of L blocks.
    const appliedBlocks = model.layerBlocks.reduce((n, b) => n + counts[unique.indexOf(b)].active, 0);
    const uniqueBlocks = counts.reduce((n, c) => n + c.active, 0);
    const context = opts.context ?? imagePositions(cfg) + cfg.maxTextLen;
    // Matmul FLOPs: 2 per active weight (the embedding lookup is free, the tied head is not: + V·D),
    // plus attention scores and mixing: 2 · 2 · layers · context · dim.
    const embeddingParams = cfg.vocabSize * cfg.dim;
    const flopParams = activeParams - uniqueBlocks + appliedBlocks;
    const flopsPerTokenForward = 2 * (flopParams - embeddingParams + cfg.vocabSize * cfg.dim) + 4 * cfg.layers * context * cfg.dim;
    return {
      name: cfg.name, totalParams, activeParams, expertParams, experts: cfg.experts, context,
      moeLayers: model.layerBlocks.filter((b) => b.ffn instanceof MoeLayer).length,
      paramsPerExpert: perExpert, blockDenseParams: Math.max(...counts.map((c) => c.dense)), embeddingParams,
      flopsPerTokenForward,
      flopsPerTokenTraining: 3 * flopsPerTokenForward,
      bytes: {
        weights: { fp32: 4 * totalParams, bf16: 2 * totalParams },
        grads: { fp32: 4 * totalParams, bf16: 2 * totalParams },
        adamw: { fp32: 8 * totalParams, bf16: 4 * totalParams },
      },
    };
  } finally {
    model.dispose();
  }
}
