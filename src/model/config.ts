// M6 configurations and presets, from one that trains on a laptop CPU to the paper's scales.
// Everything is one flat, typed record (nanoGPT's GPTConfig); `validateConfig` says what is wrong.
import { InputError } from '../torch/inputError.js';

export interface M6Config {
  name: string;
  // ---- vocabulary: text BPE tokens, then a block of image codes (the VQ tokenizer's), one output head
  vocabSize: number;          // all tokens, image codes included
  imageCodeStart: number;     // id of image code 0
  imageCodes: number;         // size of the VQ codebook
  // ---- transformer
  layers: number;
  dim: number;
  heads: number;
  ffnDim: number;             // hidden size of each (dense or expert) FFN
  maxTextLen: number;         // source + target text positions
  dropout: number;
  /** Pseudo-to-Real: one block's weights used by every layer (M6-10T's "pseudo" model). */
  shareLayers: boolean;
  // ---- image input: a conv stem turns a (3, imageSize, imageSize) image into a grid of patch features
  imageSize: number;
  patchSize: number;          // the stem's downsampling; the grid is imageSize/patchSize per side
  stemChannels: number;
  /** The layout token: each patch's features squeezed to this many channels and all patches read by one
   * linear layer into one more image position (a CNN's fully connected layer); 0 = none (configs from
   * before it). Where the object is and what outline it has is then one projection away, instead of
   * something the attention layers must first learn to assemble from position-blind patches. */
  layoutChannels: number;
  /** Answer rows pack every question about one image into one row (Example.pairs): one pass over the
   * image trains all of them. So that no question's answer reaches another through the image
   * positions, the image of an answer row never attends its question text, in training and at
   * inference alike (the question still attends the image). false = one question per row, the image
   * attending it (configs from before). */
  packAnswers: boolean;
  /** The share of design rows trained with their prompt left out (the instruction alone), so the
   * model also learns what an image looks like unprompted and design can sample with classifier-free
   * guidance (designs pushed away from that towards the prompt); 0 = never (configs from before). */
  designPromptDropout: number;
  // ---- sparse Mixture-of-Experts FFN (M6-T)
  experts: number;            // 0 = dense FFN everywhere
  moeEvery: number;           // every N-th layer (counting from the 2nd when 2) is an MoE layer
  expertGroups: number;       // expert prototyping: k groups, top-1 in each (k = 1 is Switch-style top-1)
  topK: number;               // plain top-k routing over all experts (used when expertGroups = 1)
  capacityFactor: number;     // 0 = dropless
  auxLossWeight: number;      // load balancing
  zLossWeight: number;        // router z-loss
  // ---- the recommend task's items (M6-Rec): 0 = no item table (older runs' configs have none)
  items: number;              // catalog items with a learnt vector each
  itemTextLen: number;        // title tokens kept per item for its content vector (0 = ids only)
  /** Training: the share of items whose learnt vector is dropped in a step, so the title path learns to stand alone (DropoutNet). */
  itemIdDropout: number;
}

const NANO: M6Config = {
  name: 'm6-nano', vocabSize: 4096 + 1024, imageCodeStart: 4096, imageCodes: 1024,
  layers: 4, dim: 128, heads: 4, ffnDim: 512, maxTextLen: 96, dropout: 0, shareLayers: false,
  imageSize: 64, patchSize: 8, stemChannels: 32, layoutChannels: 8, packAnswers: true, designPromptDropout: 0.1,
  experts: 0, moeEvery: 2, expertGroups: 1, topK: 1, capacityFactor: 1.25, auxLossWeight: 0.01, zLossWeight: 0.001,
  items: 0, itemTextLen: 0, itemIdDropout: 0,
};

/** The presets. Paper scales are for `m6 inspect` (built on the meta device: no memory is allocated). */
export const PRESETS: Record<string, M6Config> = {
  'm6-nano': NANO,
  'm6-small': { ...NANO, name: 'm6-small', vocabSize: 16384 + 8192, imageCodeStart: 16384, imageCodes: 8192,
    layers: 8, dim: 512, heads: 8, ffnDim: 2048, maxTextLen: 128, imageSize: 128, patchSize: 16, stemChannels: 64 },
  // M6-base: 327M parameters in the paper.
  'm6-base': { ...NANO, name: 'm6-base', vocabSize: 32000 + 8192, imageCodeStart: 32000, imageCodes: 8192,
    layers: 24, dim: 1024, heads: 16, ffnDim: 4096, maxTextLen: 256, dropout: 0.1, imageSize: 224, patchSize: 16, stemChannels: 64 },
  // M6-10B: dense.
  'm6-10b': { ...NANO, name: 'm6-10b', vocabSize: 50000 + 8192, imageCodeStart: 50000, imageCodes: 8192,
    layers: 48, dim: 4096, heads: 32, ffnDim: 16384, maxTextLen: 512, dropout: 0.1, imageSize: 224, patchSize: 16, stemChannels: 128 },
  // M6-100B (M6-T): 1,024 experts in every other layer, top-1.
  'm6-100b': { ...NANO, name: 'm6-100b', vocabSize: 50000 + 8192, imageCodeStart: 50000, imageCodes: 8192,
    layers: 24, dim: 1024, heads: 16, ffnDim: 4096, maxTextLen: 512, dropout: 0.1, imageSize: 224, patchSize: 16, stemChannels: 64,
    experts: 1024, moeEvery: 2, expertGroups: 1, topK: 1 },
  // M6-1T (M6-T): 1,280 experts, expert prototyping with 2 groups (two active experts per token).
  'm6-1t': { ...NANO, name: 'm6-1t', vocabSize: 50000 + 8192, imageCodeStart: 50000, imageCodes: 8192,
    layers: 48, dim: 2048, heads: 16, ffnDim: 8192, maxTextLen: 512, dropout: 0.1, imageSize: 224, patchSize: 16, stemChannels: 128,
    experts: 1280, moeEvery: 2, expertGroups: 2, topK: 1 },
  // M6-10T: 3,072 experts; trained Pseudo-to-Real (a shared-weight "pseudo" model first, then delinked).
  'm6-10t': { ...NANO, name: 'm6-10t', vocabSize: 50000 + 8192, imageCodeStart: 50000, imageCodes: 8192,
    layers: 48, dim: 4096, heads: 32, ffnDim: 16384, maxTextLen: 512, dropout: 0.1, imageSize: 224, patchSize: 16, stemChannels: 128,
    experts: 3072, moeEvery: 2, expertGroups: 4, topK: 1 },
};

export function preset(name: string, overrides: Partial<M6Config> = {}): M6Config {
  const p = PRESETS[name];
  if (!p) throw new Error(`unknown preset '${name}': expected one of ${Object.keys(PRESETS).join(', ')}`);
  return validateConfig({ ...p, ...overrides });
}

/** Whether layer i (0-based) has an MoE FFN. */
export function isMoeLayer(cfg: M6Config, i: number): boolean {
  return cfg.experts > 0 && (cfg.moeEvery <= 1 || i % cfg.moeEvery === cfg.moeEvery - 1);
}

export function gridSize(cfg: M6Config): number { return cfg.imageSize / cfg.patchSize; }

/** Positions an image takes in the sequence: its grid of patches, and the layout token when there is one. */
export function imagePositions(cfg: M6Config): number { return gridSize(cfg) ** 2 + (cfg.layoutChannels > 0 ? 1 : 0); }

/** A config that cannot build a model (from --config, a run's config.json, or code). */
export class ConfigError extends InputError {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

export function validateConfig(c: M6Config): M6Config {
  // Configs written before the recommend task have no item fields: they have no item table.
  c.items ??= 0;
  c.itemTextLen ??= 0;
  c.itemIdDropout ??= 0;
  // Configs written before the layout token have none.
  c.layoutChannels ??= 0;
  // Configs written before answer packing read one question per row.
  c.packAnswers ??= false;
  // Configs written before classifier-free guidance never dropped a design prompt.
  c.designPromptDropout ??= 0;
  const bad: string[] = [];
  const posInt = (k: keyof M6Config) => { const v = c[k]; if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) bad.push(`${k} must be a positive integer (got ${String(v)})`); };
  (['vocabSize', 'imageCodes', 'layers', 'dim', 'heads', 'ffnDim', 'maxTextLen', 'imageSize', 'patchSize', 'stemChannels', 'moeEvery', 'expertGroups', 'topK'] as const).forEach(posInt);
  if (c.dim % c.heads !== 0) bad.push(`dim (${c.dim}) must be divisible by heads (${c.heads})`);
  if (c.imageCodeStart < 0 || c.imageCodeStart + c.imageCodes > c.vocabSize) bad.push(`image codes [${c.imageCodeStart}, ${c.imageCodeStart + c.imageCodes}) must lie inside the vocabulary (${c.vocabSize})`);
  if (c.imageSize % c.patchSize !== 0) bad.push(`imageSize (${c.imageSize}) must be a multiple of patchSize (${c.patchSize})`);
  if (!Number.isInteger(Math.log2(c.patchSize))) bad.push(`patchSize (${c.patchSize}) must be a power of 2 (the stem halves the resolution per stage)`);
  if (c.experts < 0 || !Number.isInteger(c.experts)) bad.push(`experts must be a non-negative integer (got ${c.experts})`);
  if (c.experts > 0 && c.experts % c.expertGroups !== 0) bad.push(`experts (${c.experts}) must be divisible by expertGroups (${c.expertGroups})`);
  if (c.experts > 0 && c.expertGroups === 1 && c.topK > c.experts) bad.push(`topK (${c.topK}) exceeds experts (${c.experts})`);
  if (c.expertGroups > 1 && c.topK !== 1) bad.push('expert prototyping (expertGroups > 1) routes top-1 in each group: set topK to 1');
  if (c.capacityFactor < 0) bad.push(`capacityFactor must be ≥ 0 (0 = dropless), got ${c.capacityFactor}`);
  if (!Number.isInteger(c.items) || c.items < 0) bad.push(`items must be a non-negative integer (got ${c.items})`);
  if (!Number.isInteger(c.itemTextLen) || c.itemTextLen < 0) bad.push(`itemTextLen must be a non-negative integer (got ${c.itemTextLen})`);
  if (!(c.itemIdDropout >= 0 && c.itemIdDropout < 1)) bad.push(`itemIdDropout must be in [0, 1), got ${c.itemIdDropout}`);
  if (!Number.isInteger(c.layoutChannels) || c.layoutChannels < 0) bad.push(`layoutChannels must be a non-negative integer (got ${c.layoutChannels})`);
  if (typeof c.packAnswers !== 'boolean') bad.push(`packAnswers must be true or false (got ${JSON.stringify(c.packAnswers)})`);
  if (!(c.designPromptDropout >= 0 && c.designPromptDropout < 1)) bad.push(`designPromptDropout must be in [0, 1), got ${c.designPromptDropout}`);
  if (c.dropout < 0 || c.dropout >= 1) bad.push(`dropout must be in [0, 1), got ${c.dropout}`);
  if (bad.length) throw new ConfigError(`invalid M6 config '${c.name}': ${bad.join('; ')}`);
  return c;
}

/** Experts each token uses in an MoE layer. */
export function activeExperts(cfg: M6Config): number {
  return cfg.expertGroups > 1 ? cfg.expertGroups : cfg.topK;
}
