// M6: one transformer that reads image patches and text and writes text or image codes.
// Read in order: the image stem, the block, the model (embeddings → blocks → head), Pseudo-to-Real.
//
// Sequence layout (OFA/M6 prefix-LM):
//   [ image (N = grid² patches, + 1 layout token) | source text (S) | target (T) ]
//   \______ prefix: bidirectional ______/   \_ causal _/
// One stack is both encoder and decoder: the attention mask lets prefix positions see the whole
// prefix and target positions see the prefix plus the targets before them.
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';
import { Module, ModuleList, Linear, Embedding, LayerNorm, GroupNorm, Conv2d, MultiheadAttention, KvCache, type ModuleOptions } from '../nn/index.js';
import { Ffn, MoeLayer } from './moe.js';
import { gridSize, isMoeLayer, validateConfig, type M6Config } from './config.js';

/** What the target tokens are: text (describe, answer) or image codes (design). */
export type TargetKind = 'text' | 'image';
const SEGMENT = { image: 0, source: 1, targetText: 2, targetImage: 3 } as const;

export interface M6Input {
  images?: Tensor;        // (B, 3, H, W) float, normalised
  imageMask?: Tensor;     // (B) bool, false = the row has no image (its patches are masked out, as if absent)
  source?: Tensor;        // (B, S) int64 token ids: the instruction and any input text
  sourceMask?: Tensor;    // (B, S) bool, true = a real token (false = padding)
  target: Tensor;         // (B, T) int64 decoder inputs (teacher forcing): BOS then the target shifted right
  targetMask?: Tensor;    // (B, T) bool
  /** One kind for the batch, or (B) bool per row (true = image codes) when a batch mixes tasks. */
  targetKind?: TargetKind | Tensor;
  labels?: Tensor;        // (B, T) int64 next tokens, -100 where ignored
  /** Packed rows (several question–answer pairs about one image in one row): each pair sees the image and itself only. */
  pairs?: PairLayout;
  /** Rows whose image positions do not attend their text (answer rows of a `packAnswers` model): (B) bool, or true for all. */
  isolateImage?: Tensor | boolean;
}

/**
 * Which pair of a packed row each text token belongs to, and its position within that pair (each
 * pair's source and target counted from 0, as a lone pair's are). A token attends the image and
 * tokens of its own pair; every token of an unpacked row is pair 0, padding -1.
 */
export interface PairLayout {
  source: Tensor;         // (B, S) int64
  sourcePos: Tensor;      // (B, S) int64
  target: Tensor;         // (B, T) int64
  targetPos: Tensor;      // (B, T) int64
}

export interface MoeStats { layer: number; load: Tensor; dropped: Tensor }

export interface M6Output {
  logits: Tensor;         // (B, T, V) for the target positions only
  loss?: Tensor;          // cross-entropy + weighted MoE auxiliary losses, when labels are given
  lmLoss?: Tensor;
  auxLoss: Tensor;        // Σ over MoE layers (unweighted)
  zLoss: Tensor;
  moe: MoeStats[];
}

// ---------------------------------------------------------------------------------------------
/**
 * Turns an image into a grid of patch features: log2(patch) stride-2 conv stages, a LayerNorm, then a
 * projection; with `layoutChannels`, one more feature before them, the layout token (M6Config says
 * why; the README's "Why shape came late" measures it). Why the norm: each default-initialised conv
 * stage shrinks the activations, so without it the projected patches started ~3× weaker (std ≈
 * 0.006) than the token and position embeddings (0.02) they are added to, and early training learnt
 * the text prior while barely looking at the image.
 */
export class ImageStem extends Module {
  readonly stages: ModuleList<Conv2d>;
  /** GroupNorm after each conv: trains the convs from scratch without a pretrained backbone (ResNet's role in OFA). */
  readonly stageNorms: ModuleList<GroupNorm>;
  readonly norm: LayerNorm;
  readonly proj: Linear;
  readonly rowPos: Embedding;
  readonly colPos: Embedding;
  /** The layout token: patch features → `layoutChannels` each, then all of them → one (D) feature. */
  readonly layoutIn: Linear | undefined;
  readonly layoutProj: Linear | undefined;
  constructor(cfg: M6Config, opts: ModuleOptions = {}) {
    super();
    const stages = Math.log2(cfg.patchSize);
    this.stages = this.module('stages', new ModuleList<Conv2d>());
    this.stageNorms = this.module('stageNorms', new ModuleList<GroupNorm>());
    let c = 3;
    for (let i = 0; i < stages; i++) {
      const out = Math.min(cfg.stemChannels * 2 ** i, cfg.stemChannels * 4);
      this.stages.push(new Conv2d(c, out, 3, { ...opts, stride: 2, padding: 1 }));
      this.stageNorms.push(new GroupNorm(Math.min(8, out), out, 1e-5, opts));
      c = out;
    }
    this.norm = this.module('norm', new LayerNorm(c, 1e-5, opts));
    this.proj = this.module('proj', new Linear(c, cfg.dim, opts));
    const g = gridSize(cfg);
    this.rowPos = this.module('rowPos', new Embedding(g, cfg.dim, { ...opts, std: 0.02 }));
    this.colPos = this.module('colPos', new Embedding(g, cfg.dim, { ...opts, std: 0.02 }));
    if (cfg.layoutChannels > 0) {
      this.layoutIn = this.module('layoutIn', new Linear(c, cfg.layoutChannels, opts));
      this.layoutProj = this.module('layoutProj', new Linear(g * g * cfg.layoutChannels, cfg.dim, opts));
    }
  }

  /** (B, 3, H, W) → (B, grid², D) with 2-D position embeddings added; (B, 1 + grid², D) with the layout token first. */
  forward(images: Tensor): Tensor {
    return torch.scope(() => {
      let h = images;
      this.stages.items.forEach((conv, i) => (h = this.stageNorms.items[i]!.forward(conv.forward(h)).gelu()));
      const [B, C, G, G2] = h.shape;
      const normed = this.norm.forward(h.view(B, C, G * G2).transpose(1, 2));   // (B, G·G, C)
      const feats = this.proj.forward(normed);                                   // (B, G·G, D)
      const rows = torch.arange(G, undefined, 1, { device: images.device });
      const pos = this.rowPos.forward(rows).unsqueeze(1).add(this.colPos.forward(rows).unsqueeze(0)).view(G * G2, -1);  // (G·G, D)
      const patches = feats.add(pos);
      if (this.layoutIn === undefined || this.layoutProj === undefined) return patches;
      // Each weight of layoutProj belongs to one patch position: an outline is a linear read of the grid.
      const layout = this.layoutProj.forward(this.layoutIn.forward(normed).gelu().reshape(B!, -1)).unsqueeze(1);  // (B, 1, D)
      return torch.cat([layout, patches], 1);
    });
  }
}

// ---------------------------------------------------------------------------------------------
/** Pre-LN transformer block: x + attn(ln(x)); x + ffn(ln(x)), the FFN dense or MoE. */
export class Block extends Module {
  readonly ln1: LayerNorm;
  readonly attn: MultiheadAttention;
  readonly ln2: LayerNorm;
  readonly ffn: Ffn | MoeLayer;
  constructor(cfg: M6Config, moe: boolean, opts: ModuleOptions = {}) {
    super();
    this.ln1 = this.module('ln1', new LayerNorm(cfg.dim, 1e-5, opts));
    this.attn = this.module('attn', new MultiheadAttention(cfg.dim, cfg.heads, cfg.dropout, opts));
    this.ln2 = this.module('ln2', new LayerNorm(cfg.dim, 1e-5, opts));
    this.ffn = this.module('ffn', moe
      ? new MoeLayer(cfg.dim, cfg.ffnDim, { ...opts, experts: cfg.experts, groups: cfg.expertGroups, topK: cfg.topK, capacityFactor: cfg.capacityFactor })
      : new Ffn(cfg.dim, cfg.ffnDim, opts));
  }

  /** x: (B, L, D). Returns the new x and, for an MoE block, its routing outputs. */
  forward(x: Tensor, mask: Tensor | undefined, cache: KvCache | undefined, dropout: number): { x: Tensor; moe?: { auxLoss: Tensor; zLoss: Tensor; load: Tensor; dropped: Tensor } } {
    return torch.scope(() => {
      const a = this.attn.forward(this.ln1.forward(x), { mask, cache });
      const h = x.add(torch.nn.dropout(a, dropout, this.training));
      const [B, L, D] = h.shape;
      const n = this.ln2.forward(h);
      if (this.ffn instanceof MoeLayer) {
        const r = this.ffn.forward(n.view(B * L, D));
        return { x: h.add(torch.nn.dropout(r.out.view(B, L, D), dropout, this.training)), moe: { auxLoss: r.auxLoss, zLoss: r.zLoss, load: r.load, dropped: r.dropped } };
      }
      return { x: h.add(torch.nn.dropout(this.ffn.forward(n), dropout, this.training)) };
    });
  }
}

// ---------------------------------------------------------------------------------------------
/**
 * The recommend task's items (M6-Rec, with SASRec's and P5's learnt item ids). An item's vector is
 * a learnt vector of its own plus, when it has a title, a projection of the mean of its title
 * tokens' embeddings from the model's own token table: what the text tasks learn about words
 * reaches the items, and an item never seen in training still has a vector from its title. Titles
 * are tokenised once and kept as a buffer, so a run carries its items with it, and scoring every
 * item is one pass over this table, never a transformer pass per item (M6-Rec's late interaction).
 */
export class ItemTable extends Module {
  readonly id: Embedding;
  readonly textProj: Linear | undefined;
  /** (items, itemTextLen) int64 title tokens, -1 after the title's end (and for items without one). */
  readonly text: Tensor | undefined;
  /** log(1/τ) of the recommend softmax over cosine scores, learnt. */
  readonly logitScale: Tensor;
  private readonly idDropout: number;
  constructor(cfg: M6Config, opts: ModuleOptions = {}) {
    super();
    this.idDropout = cfg.itemIdDropout;
    this.id = this.module('id', new Embedding(cfg.items, cfg.dim, { ...opts, std: 0.02 }));
    if (cfg.itemTextLen > 0) {
      this.textProj = this.module('textProj', new Linear(cfg.dim, cfg.dim, { ...opts, bias: false }));
      this.text = this.buffer('text', torch.full([cfg.items, cfg.itemTextLen], -1, { dtype: 'int64', ...(opts.device ? { device: opts.device } : {}) }));
    }
    this.logitScale = this.param('logitScale', torch.full([], Math.log(1 / 0.07), { ...(opts.device ? { device: opts.device } : {}) }));
  }

  get count(): number { return this.id.num; }

  /** Sets the items' title tokens: (items × itemTextLen) ids, -1 after each title's end. */
  setText(tokens: Int32Array): void {
    if (this.text === undefined) throw new RangeError('setText(): this model keeps no item titles (itemTextLen is 0)');
    if (tokens.length !== this.text.numel) throw new RangeError(`setText(): expected ${this.text.numel} token ids (${this.text.shape.join(' × ')}), got ${tokens.length}`);
    torch.noGrad(() => torch.scope(() => this.text!.copy_(torch.tensor(tokens, { shape: this.text!.shape, dtype: 'int64', device: this.text!.device }))));
  }

  /** Zeroes the learnt vectors of these items: items with no training interactions are scored by their titles alone. */
  clearIds(items: readonly number[]): void {
    if (items.length === 0) return;
    torch.noGrad(() => torch.scope(() => {
      const keep = new Float32Array(this.count).fill(1);
      for (const i of items) keep[i] = 0;
      this.id.weight.mul_(torch.tensor(keep, { shape: [this.count, 1], device: this.id.weight.device }).to({ dtype: this.id.weight.dtype }));
    }));
  }

  /** (N, D) vectors of items `ids` ((N) int64), or of every item. `tok` is the model's token table. */
  vectors(tok: Embedding, ids?: Tensor): Tensor {
    return torch.scope(() => {
      let own = ids === undefined ? this.id.weight : this.id.forward(ids);
      if (this.text === undefined || this.textProj === undefined) return own;
      if (this.training && this.idDropout > 0) {
        // Dropped items are seen by their titles alone in this step: what a cold item always is.
        const keep = torch.rand([own.shape[0]!, 1], { device: own.device }).ge(this.idDropout).to({ dtype: own.dtype });
        own = own.mul(keep);
      }
      const text = ids === undefined ? this.text : this.text.indexSelect(0, ids);
      const real = text.ge(0);
      const words = tok.forward(text.clamp(0)).mul(real.unsqueeze(2).to({ dtype: tok.weight.dtype }));
      const mean = words.sum(1).div(real.sum(1, { keepdim: true }).clamp(1).to({ dtype: tok.weight.dtype }));
      return own.add(this.textProj.forward(mean));
    });
  }
}

// ---------------------------------------------------------------------------------------------
export class M6Model extends Module {
  readonly cfg: M6Config;
  readonly tok: Embedding;        // text tokens and image codes; tied to the output head
  readonly pos: Embedding;        // 1-D positions of source and target tokens (each counted from 0)
  readonly segment: Embedding;    // image / source / target text / target image
  readonly stem: ImageStem;
  readonly blocks: ModuleList<Block>;
  readonly lnf: LayerNorm;
  /** The embed task: pooled final states → one vector per image or text in a shared space (CLIP-style). */
  readonly embedProj: Linear;
  /** log(1/τ) of the contrastive loss, learnt (CLIP: starts at τ = 0.07). */
  readonly logitScale: Tensor;
  /** The block used at each layer: L distinct blocks, or one shared block L times (Pseudo-to-Real). */
  readonly layerBlocks: Block[];
  /** The recommend task's items, when the config has any. */
  readonly items: ItemTable | undefined;

  constructor(config: M6Config, opts: ModuleOptions = {}) {
    super();
    const cfg = (this.cfg = validateConfig({ ...config }));
    this.tok = this.module('tok', new Embedding(cfg.vocabSize, cfg.dim, { ...opts, std: 0.02 }));
    this.pos = this.module('pos', new Embedding(cfg.maxTextLen, cfg.dim, { ...opts, std: 0.02 }));
    this.segment = this.module('segment', new Embedding(4, cfg.dim, { ...opts, std: 0.02 }));
    this.stem = this.module('stem', new ImageStem(cfg, opts));
    this.blocks = this.module('blocks', new ModuleList<Block>());
    if (cfg.shareLayers) {
      const shared = new Block(cfg, isMoeLayer(cfg, 0), opts);
      this.blocks.push(shared);
      this.layerBlocks = Array.from({ length: cfg.layers }, () => shared);
    } else {
      for (let i = 0; i < cfg.layers; i++) this.blocks.push(new Block(cfg, isMoeLayer(cfg, i), opts));
      this.layerBlocks = this.blocks.items;
    }
    this.lnf = this.module('lnf', new LayerNorm(cfg.dim, 1e-5, opts));
    this.embedProj = this.module('embedProj', new Linear(cfg.dim, cfg.dim, { ...opts, bias: false }));
    this.logitScale = this.param('logitScale', torch.full([], Math.log(1 / 0.07), { ...(opts.device ? { device: opts.device } : {}) }));
    if (cfg.items > 0) this.items = this.module('items', new ItemTable(cfg, opts));
    this.initWeights();
  }

  /** The MoE layers in the order one pass through the blocks calls them (a shared block's: L times). */
  moeLayersPerPass(): MoeLayer[] {
    return this.layerBlocks.flatMap((b) => (b.ffn instanceof MoeLayer ? [b.ffn] : []));
  }

  /**
   * Zero tokens through every MoE layer, in the order a forward calls them and fed as a forward feeds
   * them (the block's norm over the residual stream, so the dtypes match): what an expert-parallel
   * rank runs when its peers make more passes than it does. Returns the (0, D) stream.
   */
  emptyMoePass(): Tensor {
    let h = torch.zeros([0, this.cfg.dim], { dtype: this.tok.weight.dtype, device: this.device });
    for (const b of this.layerBlocks) if (b.ffn instanceof MoeLayer) h = h.add(b.ffn.forward(b.ln2.forward(h)).out);
    return h;
  }

  /** Each MoE layer once. */
  moeLayers(): MoeLayer[] {
    return [...new Set(this.moeLayersPerPass())];
  }

  /** Where the weights are (inputs must be made there too). */
  get device(): torch.Device {
    return this.tok.weight.device;
  }

  /** The MoE routing losses as they enter the objective: the load-balancing loss and the router z-loss, each at its configured weight. */
  routingLoss(auxLoss: Tensor, zLoss: Tensor): Tensor {
    return auxLoss.mul(this.cfg.auxLossWeight).add(zLoss.mul(this.cfg.zLossWeight));
  }

  /**
   * GPT-2/nanoGPT initialisation: every Linear (and expert) weight N(0, 0.02), biases zero, and the
   * projections that write into the residual stream scaled by 1/√(2·layers), so the stream starts
   * dominated by the token embeddings. (With PyTorch's default Linear init the attention output — nearly
   * the same vector at every position at init — dominates instead, and an MoE router then sends almost
   * every token to the same expert.)
   */
  private initWeights(): void {
    const residualStd = 0.02 / Math.sqrt(2 * this.cfg.layers);
    torch.noGrad(() => {
      for (const block of this.blocks) {
        const linears: [Linear, number][] = [[block.attn.qkv, 0.02], [block.attn.proj, residualStd]];
        if (block.ffn instanceof Ffn) linears.push([block.ffn.fc, 0.02], [block.ffn.proj, residualStd]);
        for (const [l, std] of linears) {
          l.weight.normal_(0, std);
          l.bias?.zero_();
        }
        if (block.ffn instanceof MoeLayer) {
          block.ffn.w1.normal_(0, 0.02);
          block.ffn.w2.normal_(0, residualStd);
          block.ffn.b1.zero_();
          block.ffn.b2.zero_();
        }
      }
      this.stem.proj.weight.normal_(0, 0.02);
      this.stem.proj.bias?.zero_();
    });
  }

  /** Image patches and source text as (B, P, D) embeddings, with which prefix positions are real. */
  embedPrefix(images: Tensor | undefined, source: Tensor | undefined, sourceMask: Tensor | undefined, batch: number, imageMask?: Tensor, sourcePos?: Tensor): { x: Tensor | undefined; valid: Tensor | undefined } {
    return torch.scope(() => {
      const parts: Tensor[] = [], valid: Tensor[] = [];
      const device = (images ?? source)?.device ?? 'cpu';
      if (images) {
        if (images.shape[2] !== this.cfg.imageSize || images.shape[3] !== this.cfg.imageSize) {
          throw new RangeError(`images are ${images.shape[2]}×${images.shape[3]}; ${this.cfg.name} expects ${this.cfg.imageSize}×${this.cfg.imageSize}`);
        }
        const patches = this.stem.forward(images);
        parts.push(patches.add(this.segment.weight.index(SEGMENT.image)));
        valid.push(imageMask ? imageMask.view(batch, 1).expand(batch, patches.shape[1]) : torch.ones([batch, patches.shape[1]], { dtype: 'bool', device }));
      }
      if (source) {
        const S = source.shape[1];
        if (S > this.cfg.maxTextLen) throw new RangeError(`source has ${S} tokens; ${this.cfg.name} takes at most ${this.cfg.maxTextLen}`);
        const positions = sourcePos ?? torch.arange(S, undefined, 1, { device });
        parts.push(this.tok.forward(source).add(this.pos.forward(positions)).add(this.segment.weight.index(SEGMENT.source)));
        valid.push(sourceMask ?? torch.ones([batch, S], { dtype: 'bool', device }));
      }
      if (!parts.length) return { x: undefined, valid: undefined };
      return { x: torch.cat(parts, 1), valid: torch.cat(valid, 1) };
    });
  }

  /**
   * Target tokens as (B, T, D), positions counted from `offset` (incremental decoding): one number
   * for every row, or a (B, 1) int64 tensor of each row's own (rows that joined a running batch at
   * different times), or a (B, T) one that is every position itself (packed rows; for T = 1 the two
   * readings agree); `kind` per batch or per row ((B) bool, true = image). A tensor offset is the
   * caller's to keep within maxTextLen (checking it here would read it back every step).
   */
  embedTarget(target: Tensor, kind: TargetKind | Tensor, offset: number | Tensor = 0): Tensor {
    return torch.scope(() => {
      const T = target.shape[1];
      if (typeof offset === 'number' && offset + T > this.cfg.maxTextLen) throw new RangeError(`target positions reach ${offset + T}; ${this.cfg.name} has ${this.cfg.maxTextLen}`);
      const positions = typeof offset === 'number'
        ? torch.arange(offset, offset + T, 1, { device: target.device })
        : offset.shape[1] === T ? offset : offset.add(torch.arange(T, undefined, 1, { device: target.device }).unsqueeze(0));   // (B, T)
      const segment = (k: TargetKind) => this.segment.weight.index(k === 'image' ? SEGMENT.targetImage : SEGMENT.targetText);
      const seg = typeof kind === 'string' ? segment(kind) : torch.where(kind.view(-1, 1, 1), segment('image'), segment('text'));  // (D) or (B, 1, D)
      return this.tok.forward(target).add(this.pos.forward(positions)).add(seg);
    });
  }

  /** Runs every layer; with caches, keys/values of these positions are appended for later steps. */
  runBlocks(x: Tensor, mask: Tensor | undefined, caches?: KvCache[]): { x: Tensor; aux: Tensor; z: Tensor; moe: MoeStats[] } {
    let aux = torch.zeros([], { device: x.device });
    let z = torch.zeros([], { device: x.device });
    const moe: MoeStats[] = [];
    this.layerBlocks.forEach((block, i) => {
      const r = block.forward(x, mask, caches?.[i], this.cfg.dropout);
      x = r.x;
      if (r.moe) {
        aux = aux.add(r.moe.auxLoss);
        z = z.add(r.moe.zLoss);
        moe.push({ layer: i, load: r.moe.load, dropped: r.moe.dropped });
      }
    });
    return { x, aux, z, moe };
  }

  /** Final norm and the tied head: (B, T, D) → (B, T, V). */
  head(x: Tensor): Tensor {
    return torch.nn.linear(this.lnf.forward(x), this.tok.weight);
  }

  forward(input: M6Input): M6Output {
    return torch.scope(() => {
      const { target } = input;
      const [B, T] = target.shape;
      const { pairs } = input;
      const prefix = this.embedPrefix(input.images, input.source, input.sourceMask, B, input.imageMask, pairs?.sourcePos);
      const tgt = this.embedTarget(target, input.targetKind ?? 'text', pairs?.targetPos ?? 0);
      const x = prefix.x ? torch.cat([prefix.x, tgt], 1) : tgt;
      const P = prefix.x ? prefix.x.shape[1] : 0;
      const targetValid = input.targetMask ?? torch.ones([B, T], { dtype: 'bool', device: target.device });
      const valid = prefix.valid ? torch.cat([prefix.valid, targetValid], 1) : targetValid;
      const S = input.source?.shape[1] ?? 0;
      const imageLength = input.images ? P - S : 0;
      const isolate = input.isolateImage === false ? undefined : input.isolateImage;
      const pairIds = pairs ? torch.cat([pairs.source, pairs.target], 1) : undefined;
      const pairMask = (ids: Tensor | undefined) => (ids !== undefined || isolate !== undefined
        ? { imageLength, ...(ids ? { pairs: ids } : {}), ...(isolate ? { isolateImage: isolate } : {}) } : undefined);
      // MoE capacity counts every position, padding included: only a dense model's batch is compacted.
      const compact = this.cfg.experts === 0 && (input.sourceMask !== undefined || input.targetMask !== undefined)
        ? compactLayout(imageLength, S, T, input.sourceMask, input.targetMask) : undefined;
      let states: Tensor, r: ReturnType<M6Model['runBlocks']>;
      if (compact === undefined) {
        r = this.runBlocks(torch.nn.dropout(x, this.cfg.dropout, this.training), prefixLmMask(valid, P, pairMask(pairIds)));
        states = r.x.narrow(1, P, T);
      } else {
        const D = x.shape[2]!;
        const xc = x.gather(1, compact.gather.unsqueeze(2).expand([B, compact.gather.shape[1]!, D]));
        const validC = torch.cat([valid.narrow(1, 0, imageLength), compact.textValid], 1);
        const idsC = pairIds?.gather(1, compact.textGather.sub(imageLength));
        r = this.runBlocks(torch.nn.dropout(xc, this.cfg.dropout, this.training), prefixLmMask(validC, compact.prefixLength, pairMask(idsC)));
        states = r.x.gather(1, compact.targetAt.unsqueeze(2).expand([B, T, D]));
      }
      const logits = this.head(states);
      const out: M6Output = { logits, auxLoss: r.aux, zLoss: r.z, moe: r.moe };
      if (input.labels) {
        const lmLoss = torch.nn.crossEntropy(logits.reshape(B * T, -1).float(), input.labels.reshape(B * T), { ignoreIndex: -100 });
        out.lmLoss = lmLoss;
        out.loss = lmLoss.add(this.routingLoss(r.aux, r.z));
      }
      return out;
    });
  }

  /**
   * The embed task: one L2-normalised vector per row from images and/or source text alone. The whole
   * sequence is a bidirectional prefix (no target); the final states of the real positions are
   * mean-pooled and projected. Images and texts meet in this space, so text→image search
   * is a dot product. The MoE losses of the pass are returned for training.
   *
   * `trunkGradScale` (training) scales the gradient that flows from the vectors back into the
   * shared stem and blocks, leaving the projection's at full strength: the values are unchanged.
   */
  embed(input: { images?: Tensor; source?: Tensor; sourceMask?: Tensor; trunkGradScale?: number }): { vectors: Tensor; auxLoss: Tensor; zLoss: Tensor } {
    return torch.scope(() => {
      const batch = (input.images ?? input.source)?.shape[0];
      const prefix = this.embedPrefix(input.images, input.source, input.sourceMask, batch ?? 0);
      if (prefix.x === undefined || prefix.valid === undefined) throw new RangeError('embed(): give images and/or source text');
      const mask = prefixLmMask(prefix.valid, prefix.x.shape[1]);
      const r = this.runBlocks(torch.nn.dropout(prefix.x, this.cfg.dropout, this.training), mask);
      const h = this.lnf.forward(r.x).float();
      const weight = prefix.valid.float().unsqueeze(2);                      // (B, L, 1): 1 at real positions
      const mean = h.mul(weight).sum(1).div(weight.sum(1));
      const scale = input.trunkGradScale ?? 1;
      const pooled = scale === 1 ? mean : mean.mul(scale).add(mean.detach().mul(1 - scale));
      const v = this.embedProj.forward(pooled).float();
      return { vectors: v.div(v.norm(2, -1, true).clamp(1e-6)), auxLoss: r.aux, zLoss: r.z };
    });
  }

  /**
   * The recommend task: a shopper's items in time order, read like target text (causally, after an
   * optional source: the instruction, a profile), give at each position the L2-normalised query for
   * the item that comes next, so one pass trains on every step of a history (SASRec's objective in
   * M6's prefix LM). `history` is (B, T) item indices, right-padded with -1.
   */
  recommendQueries(input: { history: Tensor; source?: Tensor; sourceMask?: Tensor }): { queries: Tensor; auxLoss: Tensor; zLoss: Tensor } {
    const items = this.requireItems();
    return torch.scope(() => {
      const { history } = input;
      const [B, T] = history.shape as [number, number];
      const prefix = this.embedPrefix(undefined, input.source, input.sourceMask, B);
      const P = prefix.x ? prefix.x.shape[1] : 0;
      if (P + T > this.cfg.maxTextLen) throw new RangeError(`a history of ${T} items after ${P} source tokens exceeds the ${this.cfg.maxTextLen} positions of ${this.cfg.name}`);
      const real = history.ge(0);
      const vectors = items.vectors(this.tok, history.clamp(0).reshape(B * T)).view(B, T, -1);
      const positions = torch.arange(T, undefined, 1, { device: history.device });
      const tgt = vectors.add(this.pos.forward(positions)).add(this.segment.weight.index(SEGMENT.targetText));
      const x = prefix.x ? torch.cat([prefix.x, tgt], 1) : tgt;
      const valid = prefix.valid ? torch.cat([prefix.valid, real], 1) : real;
      const r = this.runBlocks(torch.nn.dropout(x, this.cfg.dropout, this.training), prefixLmMask(valid, P));
      const h = this.lnf.forward(r.x.narrow(1, P, T)).float();
      return { queries: h.div(h.norm(2, -1, true).clamp(1e-6)), auxLoss: r.aux, zLoss: r.z };
    });
  }

  /** (N, D) L2-normalised vectors of items `ids`, or of every item: what recommend queries are scored against. */
  itemVectors(ids?: Tensor): Tensor {
    const items = this.requireItems();
    return torch.scope(() => {
      const v = items.vectors(this.tok, ids).float();
      return v.div(v.norm(2, -1, true).clamp(1e-6));
    });
  }

  /** Scores (…, N) of queries (…, D) against item vectors (N, D), at the learnt softmax scale (capped at 100, as CLIP does). */
  itemScores(queries: Tensor, itemVectors: Tensor): Tensor {
    const items = this.requireItems();
    return torch.scope(() => torch.nn.linear(queries, itemVectors).mul(items.logitScale.clamp(undefined, Math.log(100)).exp()));
  }

  private requireItems(): ItemTable {
    if (this.items === undefined) throw new RangeError(`${this.cfg.name} has no item table (config items = 0): it was not trained to recommend`);
    return this.items;
  }

  /**
   * Pseudo-to-Real (M6-10T): from a model whose layers share one block, a real model with L
   * independent blocks, each starting from the shared weights; every other weight is copied.
   */
  delink(): M6Model {
    if (!this.cfg.shareLayers) throw new Error('delink(): this model does not share layers');
    const device = this.tok.weight.device;
    const real = new M6Model({ ...this.cfg, shareLayers: false }, { device, dtype: this.tok.weight.dtype });
    const state = new Map<string, Tensor>();
    for (const [k, t] of this.stateDict()) {
      if (!k.startsWith('blocks.0.')) { state.set(k, t); continue; }
      for (let i = 0; i < this.cfg.layers; i++) state.set(`blocks.${i}.${k.slice('blocks.0.'.length)}`, t);
    }
    real.loadStateDict(state);
    real.train(this.training);
    return real;
  }
}

/**
 * Symmetric InfoNCE (CLIP) over a batch of matched (image, text) vector pairs: row i's image should
 * pick row i's text among the batch's texts, and vice versa. Returns the mean and each row's loss
 * (the mean of its two directions). The learnt scale is capped at 100, as CLIP does, for stability.
 * `matches` (B, B) bool, symmetric with a true diagonal, marks every pair that counts as a match.
 */
export function contrastiveLoss(image: Tensor, text: Tensor, logitScale: Tensor, matches?: Tensor): { loss: Tensor; rows: Tensor } {
  return torch.scope(() => {
    const B = image.shape[0];
    const logits = image.float().mm(text.float().transpose(0, 1)).mul(logitScale.clamp(undefined, Math.log(100)).exp());
    if (matches !== undefined) {
      // Several rows may be right answers (two products captioned alike): the target spreads evenly
      // over them, instead of pushing apart pairs that are equally good matches.
      const target = matches.float().div(matches.float().sum(1, { keepdim: true }));
      const soft = (l: Tensor) => torch.nn.logSoftmax(l, 1).mul(target).sum(1).neg();
      const rows = soft(logits).add(soft(logits.transpose(0, 1))).div(2);
      return { loss: rows.mean(), rows };
    }
    const targets = torch.arange(B, undefined, 1, { dtype: 'int64', device: image.device });
    const i2t = torch.nn.crossEntropy(logits, targets, { reduction: 'none' });
    const t2i = torch.nn.crossEntropy(logits.transpose(0, 1), targets, { reduction: 'none' });
    const rows = i2t.add(t2i).div(2);
    return { loss: rows.mean(), rows };
  });
}

/**
 * A batch's rows with their padding squeezed out: each row's real source tokens, then its real target
 * tokens, right after its image, so the batch is as long as its longest row rather than its longest
 * source plus its longest target (packed answer rows have long sources and short targets, design
 * rows the reverse). Indices into the padded [image (I) | source (S) | target (T)] layout; padding is
 * at the end of each segment (right-padded). Undefined when nothing would be saved. Positions are
 * embedded before, and padding is never attended, so every real token's output is unchanged.
 */
function compactLayout(I: number, S: number, T: number, sourceMask: Tensor | undefined, targetMask: Tensor | undefined): {
  gather: Tensor; textGather: Tensor; textValid: Tensor; prefixLength: Tensor; targetAt: Tensor;
} | undefined {
  const device = (targetMask ?? sourceMask)!.device;
  const B = (targetMask ?? sourceMask)!.shape[0]!;
  const Sb = sourceMask ? sourceMask.long().sum(1) : torch.full([B], S, { dtype: 'int64', device });
  const Tb = targetMask ? targetMask.long().sum(1) : torch.full([B], T, { dtype: 'int64', device });
  const text = Math.max(1, Sb.add(Tb).max().item() as number);
  if (text >= S + T) return undefined;
  const c = torch.arange(text, undefined, 1, { dtype: 'int64', device }).unsqueeze(0);   // (1, text)
  const s = Sb.unsqueeze(1), t = Tb.unsqueeze(1);
  const isSource = c.lt(s);
  const inTarget = c.sub(s);
  const isTarget = isSource.logicalNot().logicalAnd(inTarget.lt(t));
  // A padding slot points at the first text position: any real index will do, it is never attended.
  const textGather = torch.where(isSource, c.add(I), torch.where(isTarget, inTarget.add(I + S), I));      // (B, text)
  const image = torch.arange(I, undefined, 1, { dtype: 'int64', device }).unsqueeze(0).expand([B, I]);
  const targetAt = s.add(I).add(torch.arange(T, undefined, 1, { dtype: 'int64', device }).unsqueeze(0)).clamp(0, I + text - 1);
  return { gather: torch.cat([image, textGather], 1), textGather, textValid: isSource.logicalOr(isTarget), prefixLength: Sb.add(I), targetAt };
}

/**
 * The mask options of a prompt whose image must not attend its text (an answer prompt of a
 * `packAnswers` model), for a prefix of P positions ending with `sourceLength` text ones; undefined
 * when the prompt is read as usual.
 */
export function isolatedImageMask(isolate: boolean | undefined, hasImages: boolean, P: number, sourceLength: number): PairMaskOptions | undefined {
  if (isolate !== true || !hasImages) return undefined;
  return { imageLength: P - sourceLength, isolateImage: true };
}

/** Packed pairs and isolated images in the prefix-LM mask (the sequence starts with `imageLength` image positions). */
export interface PairMaskOptions {
  imageLength: number;
  /** (B, L − imageLength) int64: the pair of each text position (source then target), -1 at padding; absent = all pair 0. */
  pairs?: Tensor;
  /** Rows whose image positions attend only image positions: (B) bool, or true for all. */
  isolateImage?: Tensor | true;
}

/**
 * The prefix-LM attention mask, (B, 1, L, L) bool, true = may attend:
 * key j is real, and j is in the prefix (j < P) or not after the query (j ≤ i). Every query may
 * attend itself, so no softmax row is empty (an all-masked row would give NaN gradients).
 * With `pairs`, a text position attends the image and positions of its own pair only; an image
 * position attends all of them unless its row's image is isolated.
 */
export function prefixLmMask(valid: Tensor, prefixLength: number | Tensor, o?: PairMaskOptions): Tensor {
  return torch.scope(() => {
    const [B, L] = valid.shape;
    const device = valid.device;
    const idx = torch.arange(L, undefined, 1, { device });
    const causal = idx.unsqueeze(0).le(idx.unsqueeze(1));                 // (L, L): j ≤ i
    // Or j in the prefix: one length for the batch, or each row's own ((B) int64: a compacted batch).
    const inPrefix = typeof prefixLength === 'number' ? idx.lt(prefixLength).unsqueeze(0) : idx.unsqueeze(0).lt(prefixLength.view(B!, 1)).unsqueeze(1);
    const structure = causal.logicalOr(inPrefix);                            // (L, L) or (B, L, L)
    const self = torch.eye(L, { dtype: 'bool', device });
    let allowed = (structure.ndim === 2 ? structure.unsqueeze(0) : structure).logicalAnd(valid.unsqueeze(1));      // (B, L, L)
    if (o !== undefined) {
      const I = o.imageLength;
      const text = o.pairs ?? torch.zeros([B!, L! - I], { dtype: 'int64', device });
      const pair = torch.cat([torch.full([B!, I], -1, { dtype: 'int64', device }), text], 1);   // (B, L): image -1
      const pi = pair.unsqueeze(2), pj = pair.unsqueeze(1);
      const imageQuery = pi.eq(-1);
      let ok = pj.eq(-1).logicalOr(pi.eq(pj));
      if (o.isolateImage === undefined) ok = ok.logicalOr(imageQuery);
      else if (o.isolateImage !== true) ok = ok.logicalOr(imageQuery.logicalAnd(o.isolateImage.logicalNot().view(B!, 1, 1)));
      allowed = allowed.logicalAnd(ok);
    }
    return allowed.logicalOr(self).unsqueeze(1);
  });
}
