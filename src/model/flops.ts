// Model FLOPs of one training batch, from its shapes: the numerator of model FLOPs utilisation (MFU).
//
// The convention is PaLM's/nanoGPT's: matmul and convolution FLOPs only (2 per multiply-add), the
// backward pass counted as twice the forward (training = 3 × forward); layer norms, softmax, GELU,
// embedding lookups and the optimizer are left out. What M6 does differently from a plain decoder is
// counted as it is computed:
//  - every row is [image patches | source | target] with padding: the blocks run over all L positions
//    of the padded batch (padding is computed, so it is counted);
//  - attention scores and mixing run over the full L × L (the prefix-LM mask hides entries but they are
//    still computed);
//  - the tied head runs over the target positions only (M6Model.forward narrows before the head);
//  - images pass through the conv stem, whose cost depends on the image size, not on the text.
import { activeExperts, gridSize, imagePositions, isMoeLayer, type M6Config } from './config.js';

/** The shape of one batch as M6Model.forward sees it. */
export interface BatchShape {
  rows: number;
  /** Whether the batch has images (then every row carries imagePositions: the patches and any layout token). */
  images: boolean;
  /** Source positions per row (padded). */
  source: number;
  /** Target (decoder input) positions per row (padded). */
  target: number;
}

export interface BatchFlops {
  /** Positions per row the blocks run over: patches + source + target. */
  positions: number;
  /** Forward FLOPs of the whole batch, by part. */
  stem: number;
  /** Q/K/V and output projections, FFNs or routed experts (+ routers). */
  blockMatmuls: number;
  /** QKᵀ and attention-weighted values. */
  attention: number;
  head: number;
  forward: number;
  /** forward + backward (≈ 2 × forward). */
  training: number;
}

/** Forward FLOPs of the image stem for one image: each stride-2 3×3 conv stage, the patch projection, the layout token's two. */
export function stemFlopsPerImage(cfg: M6Config): number {
  // Mirrors ImageStem's constructor: log2(patch) stages, channels doubling from stemChannels, capped at 4×.
  let flops = 0, channels = 3, size = cfg.imageSize;
  for (let i = 0; i < Math.log2(cfg.patchSize); i++) {
    const out = Math.min(cfg.stemChannels * 2 ** i, cfg.stemChannels * 4);
    size /= 2;
    flops += 2 * 9 * channels * out * size * size;
    channels = out;
  }
  const cells = gridSize(cfg) ** 2;
  const layout = cfg.layoutChannels > 0 ? 2 * channels * cfg.layoutChannels * cells + 2 * cells * cfg.layoutChannels * cfg.dim : 0;
  return flops + 2 * channels * cfg.dim * cells + layout;
}

/** Forward matmul FLOPs of one layer's projections and FFN, per position (attention scores excluded). */
export function blockFlopsPerPosition(cfg: M6Config, layer: number): number {
  const D = cfg.dim;
  const attention = 2 * D * 3 * D + 2 * D * D;
  const ffn = 2 * 2 * D * cfg.ffnDim;
  // A routed token passes through its active experts' FFNs; the router scores it against every expert.
  return attention + (isMoeLayer(cfg, layer) ? activeExperts(cfg) * ffn + 2 * D * cfg.experts : ffn);
}

export function batchFlops(cfg: M6Config, b: BatchShape): BatchFlops {
  for (const k of ['rows', 'source', 'target'] as const) {
    if (!Number.isInteger(b[k]) || b[k] < 0) throw new RangeError(`batchFlops: ${k} must be a non-negative integer, got ${b[k]}`);
  }
  const L = (b.images ? imagePositions(cfg) : 0) + b.source + b.target;
  let perRowBlocks = 0;
  for (let i = 0; i < cfg.layers; i++) perRowBlocks += L * blockFlopsPerPosition(cfg, i);
  const stem = b.images ? b.rows * stemFlopsPerImage(cfg) : 0;
  const blockMatmuls = b.rows * perRowBlocks;
  const attention = b.rows * cfg.layers * 2 * 2 * L * L * cfg.dim;
  const head = b.rows * b.target * 2 * cfg.dim * cfg.vocabSize;
  const forward = stem + blockMatmuls + attention + head;
  return { positions: L, stem, blockMatmuls, attention, head, forward, training: 3 * forward };
}
