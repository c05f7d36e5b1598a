// What a configuration costs, without allocating it: the model is built on the `meta` device
// (shapes, no data), its parameters counted, and FLOPs and memory derived from the config.
import { M6Model } from './m6.js';
import { MoeLayer } from './moe.js';
import { activeExperts, gridSize, type M6Config } from './config.js';

export interface ModelStats {
  name: string;
  totalParams: number;
  /** Parameters a token passes through: everything but the experts it is not routed to. */
  activeParams: number;
  expertParams: number;
  moeLayers: number;
  experts: number;
  /** Sequence length the FLOP figures assume: image patches + maxTextLen. */
  context: number;
  flopsPerTokenForward: number;
  flopsPerTokenTraining: number;
  bytes: {
    weights: { fp32: number; bf16: number };
    grads: { fp32: number; bf16: number };
    adamw: { fp32: number; bf16: number };   // two moments per parameter
  };
}

export function modelStats(cfg: M6Config): ModelStats {
  const model = new M6Model(cfg, { device: 'meta' });
  try {
    const totalParams = model.numParameters();
    const moe = model.layerBlocks.map((b) => b.ffn).filter((f): f is MoeLayer => f instanceof MoeLayer);
    const perExpert = moe.length ? moe[0].paramsPerExpert : 0;
    const expertParams = moe.length * cfg.experts * perExpert;
    const activeParams = totalParams - moe.length * (cfg.experts - activeExperts(cfg)) * perExpert;
    const context = gridSize(cfg) ** 2 + cfg.maxTextLen;
    // Matmul FLOPs: 2 per active weight (the embedding lookup is free, the tied head is not: + V·D),
    // plus attention scores and mixing: 2 · 2 · layers · context · dim.
    const embeddingParams = cfg.vocabSize * cfg.dim;
    const flopsPerTokenForward = 2 * (activeParams - embeddingParams + cfg.vocabSize * cfg.dim) + 4 * cfg.layers * context * cfg.dim;
    return {
      name: cfg.name, totalParams, activeParams, expertParams, moeLayers: moe.length, experts: cfg.experts, context,
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
