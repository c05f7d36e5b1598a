// The VQ image tokenizer (VQ-VAE, van den Oord et al. 2017; the conv stack of VQGAN, Esser et al.
// 2021): images leave M6 as a grid of discrete codes, one per patch of the model's grid (8×8 pixels
// in m6-nano, 16×16 in the larger presets), and are drawn back to pixels by a conv decoder. The
// codes share M6's vocabulary (the config's block of `imageCodes` ids: 1,024 in m6-nano, 8,192 in
// the larger presets), so "design a product image" is ordinary next-token prediction.
//
//   images (B, 3, H, W) in [-1, 1]  ─encoder→  z_e (B, D, H/8, W/8)  ─codebook→  codes (B, H/8, W/8)
//   codes ─lookup→ z_q (B, D, H/8, W/8) ─decoder→ images (B, 3, H, W)
//
// Pixels are in [-1, 1] (the normalisation data/image.ts gives by default, as in OFA and VQGAN).
// Training: `forward` returns the reconstruction loss plus the commitment loss; the codebook itself
// learns by EMA inside `forward` (vqCodebook.ts), so one optimizer over `parameters()` is all a
// training step needs (`vqTrainStep`). VQGAN's patch-GAN loss is optional (vqGan.ts), off unless
// `vqTrainStep` is given a discriminator.
// Reading order: config and presets, building blocks, encoder/decoder, the tokenizer, training step,
// checkpoints.
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';
import { Module, GroupNorm, ModuleList, Conv2d, type ModuleOptions } from '../nn/index.js';
import { clipGradNorm } from '../optim/index.js';
import { saveSafetensors, loadSafetensors } from '../io/index.js';
import { EmaCodebook, type QuantizeOutput } from './vqCodebook.js';
import { discriminatorHingeLoss, generatorLoss, type PatchDiscriminator } from './vqGan.js';

export { PatchDiscriminator, discriminatorHingeLoss, generatorLoss, type PatchDiscriminatorConfig } from './vqGan.js';
export { EmaCodebook, type CodebookOptions, type QuantizeOutput } from './vqCodebook.js';

// ---- config ---------------------------------------------------------------------------------------

export interface VqConfig {
  /** Side of the square training images. encode/decode take any H, W that are multiples of the downsampling factor. */
  imageSize: number;
  /** Widths at H, H/2, H/4, H/8: each entry after the first adds a stride-2 stage, so 4 entries = factor 8. */
  channels: number[];
  /** Residual blocks at each resolution. */
  resBlocks: number;
  /** GroupNorm groups; must divide every width. */
  normGroups: number;
  /** D: width of a code vector. */
  codeDim: number;
  /** K: number of codes. 8192 = the image-code block the text tokenizer reserves. */
  codebookSize: number;
  /** β of the commitment loss (VQ-VAE's 0.25). */
  commitment: number;
  /** EMA decay of the codebook statistics. */
  decay: number;
  /** Laplace smoothing of the codebook's cluster sizes. */
  eps: number;
  /** Restart a code unused for this many training steps (0: never). */
  deadCodeSteps: number;
  /** Seed the codebook from the first training batch's encoder outputs. */
  initFromData: boolean;
}

const DEFAULTS: VqConfig = {
  imageSize: 64, channels: [32, 64, 64, 128], resBlocks: 1, normGroups: 8, codeDim: 64, codebookSize: 8192,
  commitment: 0.25, decay: 0.99, eps: 1e-5, deadCodeSteps: 100, initFromData: true,
};

export type VqPreset = 'vq-nano' | 'vq-small' | 'vq-base';

export const VQ_PRESETS: Readonly<Record<VqPreset, VqConfig>> = Object.freeze({
  // 64 px, 0.64 M parameters, ~0.1 s per step of 8 images on 2 CPU cores (the m6-nano image size).
  'vq-nano': { ...DEFAULTS, imageSize: 64, channels: [16, 32, 64, 64], normGroups: 8, codeDim: 32 },
  // 128 px, 6.7 M parameters.
  'vq-small': { ...DEFAULTS, imageSize: 128, channels: [64, 64, 128, 256], normGroups: 32, codeDim: 64 },
  // 256 px, 40 M parameters: VQGAN's f8 stack widths (128, 128, 256, 512), two blocks per resolution.
  'vq-base': { ...DEFAULTS, imageSize: 256, channels: [128, 128, 256, 512], resBlocks: 2, normGroups: 32, codeDim: 256 },
});

/** A validated config: a preset name and/or overrides on top of vq-nano. */
export function vqConfig(preset: VqPreset | Partial<VqConfig> = 'vq-nano', overrides: Partial<VqConfig> = {}): VqConfig {
  let base: VqConfig;
  if (typeof preset === 'string') {
    if (!(preset in VQ_PRESETS)) throw new RangeError(`unknown VQ preset '${preset}'; choose one of ${Object.keys(VQ_PRESETS).join(', ')}`);
    base = VQ_PRESETS[preset];
  } else {
    base = VQ_PRESETS['vq-nano'];
    overrides = { ...preset, ...overrides };
  }
  const c: VqConfig = { ...base, ...overrides, channels: [...(overrides.channels ?? base.channels)] };
  const posInt = (k: keyof VqConfig, v: unknown) => {
    if (!(Number.isInteger(v) && (v as number) > 0)) throw new RangeError(`VQ config: ${k} must be a positive integer, got ${JSON.stringify(v)}`);
  };
  for (const k of ['imageSize', 'resBlocks', 'normGroups', 'codeDim', 'codebookSize'] as const) posInt(k, c[k]);
  if (c.channels.length < 2) throw new RangeError(`VQ config: channels needs at least 2 widths (one stride-2 stage), got [${c.channels}]`);
  for (const ch of c.channels) {
    posInt('channels', ch);
    if (ch % c.normGroups !== 0) throw new RangeError(`VQ config: width ${ch} in channels [${c.channels}] is not divisible by normGroups ${c.normGroups}`);
  }
  const factor = 2 ** (c.channels.length - 1);
  if (c.imageSize % factor !== 0) throw new RangeError(`VQ config: imageSize ${c.imageSize} is not a multiple of the downsampling factor ${factor}`);
  if (c.codebookSize < 2) throw new RangeError(`VQ config: codebookSize must be ≥ 2, got ${c.codebookSize}`);
  if (!(c.decay >= 0 && c.decay < 1)) throw new RangeError(`VQ config: decay must be in [0, 1), got ${c.decay}`);
  if (!(c.eps >= 0) || !(c.commitment >= 0)) throw new RangeError('VQ config: eps and commitment must be ≥ 0');
  if (!(Number.isInteger(c.deadCodeSteps) && c.deadCodeSteps >= 0)) throw new RangeError(`VQ config: deadCodeSteps must be an integer ≥ 0, got ${c.deadCodeSteps}`);
  return c;
}

// ---- building blocks ------------------------------------------------------------------------------

/** Pre-activation residual block: x + conv(silu(norm(conv(silu(norm(x)))))), 1×1 skip when widths differ. */
class ResBlock extends Module {
  readonly norm1: GroupNorm;
  readonly conv1: Conv2d;
  readonly norm2: GroupNorm;
  readonly conv2: Conv2d;
  readonly skip: Conv2d | undefined;
  constructor(inC: number, outC: number, groups: number, opts: ModuleOptions) {
    super();
    this.norm1 = this.module('norm1', new GroupNorm(groups, inC, 1e-6, opts));
    this.conv1 = this.module('conv1', new Conv2d(inC, outC, 3, { ...opts, padding: 1 }));
    this.norm2 = this.module('norm2', new GroupNorm(groups, outC, 1e-6, opts));
    this.conv2 = this.module('conv2', new Conv2d(outC, outC, 3, { ...opts, padding: 1 }));
    this.skip = inC === outC ? undefined : this.module('skip', new Conv2d(inC, outC, 1, opts));
  }
  forward(x: Tensor): Tensor {
    return torch.scope(() => {
      const h = this.conv1.forward(this.norm1.forward(x).silu());  // (B, out, H, W)
      const r = this.conv2.forward(this.norm2.forward(h).silu());
      return (this.skip ? this.skip.forward(x) : x).add(r);
    });
  }
}

/** Halves H and W: a 3×3 stride-2 convolution (learned, unlike pooling). */
class Downsample extends Module {
  readonly conv: Conv2d;
  constructor(c: number, opts: ModuleOptions) {
    super();
    this.conv = this.module('conv', new Conv2d(c, c, 3, { ...opts, stride: 2, padding: 1 }));
  }
  forward(x: Tensor): Tensor { return this.conv.forward(x); }
}

/** Doubles H and W: nearest-neighbour upsampling then a 3×3 convolution (no transposed-conv checkerboard). */
class Upsample extends Module {
  readonly conv: Conv2d;
  constructor(c: number, opts: ModuleOptions) {
    super();
    this.conv = this.module('conv', new Conv2d(c, c, 3, { ...opts, padding: 1 }));
  }
  forward(x: Tensor): Tensor {
    return torch.scope(() => this.conv.forward(torch.nn.interpolate(x, { scaleFactor: 2, mode: 'nearest' })));
  }
}

/** One resolution: residual blocks, then an optional resampling. */
class Level extends Module {
  readonly blocks = this.module('blocks', new ModuleList<ResBlock>());
  resample: Downsample | Upsample | undefined;
  forward(x: Tensor): Tensor {
    return torch.scope(() => {
      let h = x;
      for (const b of this.blocks) h = b.forward(h);
      return this.resample ? this.resample.forward(h) : h;
    });
  }
  setResample(r: Downsample | Upsample): void { this.resample = this.module('resample', r); }
}

// ---- encoder and decoder --------------------------------------------------------------------------

/** (B, 3, H, W) → (B, D, H/f, W/f), f = 2^(levels − 1). */
class Encoder extends Module {
  readonly convIn: Conv2d;
  readonly levels: ModuleList<Level>;
  readonly mid: ResBlock;
  readonly normOut: GroupNorm;
  readonly convOut: Conv2d;
  constructor(c: VqConfig, opts: ModuleOptions) {
    super();
    const ch = c.channels;
    this.convIn = this.module('convIn', new Conv2d(3, ch[0], 3, { ...opts, padding: 1 }));
    this.levels = this.module('levels', new ModuleList<Level>());
    let width = ch[0];
    ch.forEach((out, i) => {
      const level = new Level();
      for (let b = 0; b < c.resBlocks; b++) { level.blocks.push(new ResBlock(width, out, c.normGroups, opts)); width = out; }
      if (i < ch.length - 1) level.setResample(new Downsample(out, opts));
      this.levels.push(level);
    });
    this.mid = this.module('mid', new ResBlock(width, width, c.normGroups, opts));
    this.normOut = this.module('normOut', new GroupNorm(c.normGroups, width, 1e-6, opts));
    this.convOut = this.module('convOut', new Conv2d(width, c.codeDim, 1, opts));
  }
  forward(x: Tensor): Tensor {
    return torch.scope(() => {
      let h = this.convIn.forward(x);  // (B, c0, H, W)
      for (const level of this.levels) h = level.forward(h);  // (B, cL, H/f, W/f)
      h = this.mid.forward(h);
      return this.convOut.forward(this.normOut.forward(h).silu());  // (B, D, H/f, W/f)
    });
  }
}

/** (B, D, h, w) → (B, 3, h·f, w·f): the encoder mirrored. */
class Decoder extends Module {
  readonly convIn: Conv2d;
  readonly mid: ResBlock;
  readonly levels: ModuleList<Level>;
  readonly normOut: GroupNorm;
  readonly convOut: Conv2d;
  constructor(c: VqConfig, opts: ModuleOptions) {
    super();
    const ch = [...c.channels].reverse();  // deepest first
    let width = ch[0];
    this.convIn = this.module('convIn', new Conv2d(c.codeDim, width, 3, { ...opts, padding: 1 }));
    this.mid = this.module('mid', new ResBlock(width, width, c.normGroups, opts));
    this.levels = this.module('levels', new ModuleList<Level>());
    ch.forEach((out, i) => {
      const level = new Level();
      for (let b = 0; b < c.resBlocks; b++) { level.blocks.push(new ResBlock(width, out, c.normGroups, opts)); width = out; }
      if (i < ch.length - 1) level.setResample(new Upsample(out, opts));
      this.levels.push(level);
    });
    this.normOut = this.module('normOut', new GroupNorm(c.normGroups, width, 1e-6, opts));
    this.convOut = this.module('convOut', new Conv2d(width, 3, 3, { ...opts, padding: 1 }));
  }
  forward(z: Tensor): Tensor {
    return torch.scope(() => {
      let h = this.mid.forward(this.convIn.forward(z));  // (B, cL, h, w)
      for (const level of this.levels) h = level.forward(h);  // (B, c0, H, W)
      return this.convOut.forward(this.normOut.forward(h).silu());  // (B, 3, H, W)
    });
  }
}

// ---- the tokenizer --------------------------------------------------------------------------------

export interface VqOutput {
  /** (B, 3, H, W) the decoded images (not clamped: the loss sees what the decoder produced). */
  recon: Tensor;
  /** Scalar recLoss + commitLoss: what to backpropagate. */
  loss: Tensor;
  /** Scalar mean squared error of recon against the input, in [-1, 1] pixel units. */
  recLoss: Tensor;
  /** Scalar β‖z_e − sg(z_q)‖². */
  commitLoss: Tensor;
  /** Scalar exp(entropy of code usage in the batch). */
  perplexity: Tensor;
  /** Scalar int64: distinct codes in the batch. */
  usedCodes: Tensor;
  /** (B, H/f, W/f) int64 codes. */
  codes: Tensor;
}

export class VqTokenizer extends Module {
  readonly config: VqConfig;
  /** Downsampling factor f: a code per f×f pixels. */
  readonly factor: number;
  readonly encoder: Encoder;
  readonly codebook: EmaCodebook;
  readonly decoder: Decoder;

  constructor(config: VqPreset | Partial<VqConfig> = 'vq-nano', opts: ModuleOptions = {}) {
    super();
    const c = (this.config = vqConfig(config));
    this.factor = 2 ** (c.channels.length - 1);
    this.encoder = this.module('encoder', new Encoder(c, opts));
    this.codebook = this.module('codebook', new EmaCodebook({
      size: c.codebookSize, dim: c.codeDim, decay: c.decay, eps: c.eps, commitment: c.commitment,
      deadCodeSteps: c.deadCodeSteps, initFromData: c.initFromData,
    }, opts));
    this.decoder = this.module('decoder', new Decoder(c, opts));
  }

  /** Grid of codes for an H × W image: (H/f, W/f). */
  gridSize(height = this.config.imageSize, width = height): [number, number] {
    return [height / this.factor, width / this.factor];
  }

  /** Encodes then reconstructs; while training also updates the codebook (EMA, dead-code restart). */
  forward(images: Tensor): VqOutput {
    this.checkImages(images);
    return torch.scope(() => {
      const zE = this.encoder.forward(images);  // (B, D, h, w)
      const q: QuantizeOutput = this.codebook.forward(zE);
      const recon = this.decoder.forward(q.zq);  // (B, 3, H, W)
      const recLoss = torch.nn.mseLoss(recon, images);
      return { recon, loss: recLoss.add(q.commitLoss), recLoss, commitLoss: q.commitLoss, perplexity: q.perplexity, usedCodes: q.usedCodes, codes: q.codes };
    });
  }

  /** Images (B, 3, H, W) in [-1, 1] → codes (B, H/f, W/f) int64 in [0, K). Never updates the codebook. */
  encode(images: Tensor): Tensor {
    this.checkImages(images);
    return torch.noGrad(() => torch.scope(() => {
      const zE = this.encoder.forward(images);  // (B, D, h, w)
      const [B, D, h, w] = zE.shape;
      return this.codebook.nearest(zE.permute(0, 2, 3, 1).reshape(-1, D)).view(B, h, w);
    }));
  }

  /** Codes (B, h, w) int64 in [0, K) → images (B, 3, h·f, w·f), clamped to [-1, 1]. Differentiable in the decoder. */
  decode(codes: Tensor): Tensor {
    if (codes.ndim !== 3) throw new RangeError(`decode: expected codes of shape (B, h, w), got [${codes.shape}]`);
    if (codes.dtype !== 'int64' && codes.dtype !== 'int32') throw new TypeError(`decode: codes must be int64 (or int32), got ${codes.dtype}`);
    const K = this.config.codebookSize;
    if (codes.numel) {
      const [lo, hi] = torch.scope(() => [codes.min().item(), codes.max().item()]);
      if (lo < 0 || hi >= K) throw new RangeError(`decode: codes must lie in [0, ${K}), got values in [${lo}, ${hi}] (subtract the vocabulary offset of image codes first)`);
    }
    return torch.scope(() => {
      const zq = this.codebook.lookup(codes).permute(0, 3, 1, 2);  // (B, h, w, D) → (B, D, h, w)
      return this.decoder.forward(zq).clamp(-1, 1);
    });
  }

  private checkImages(images: Tensor): void {
    const s = images.shape;
    if (s.length !== 4 || s[1] !== 3) throw new RangeError(`VQ tokenizer: expected images of shape (B, 3, H, W), got [${s}]`);
    if (s[2] % this.factor !== 0 || s[3] % this.factor !== 0) {
      throw new RangeError(`VQ tokenizer: image size ${s[2]}×${s[3]} is not a multiple of the downsampling factor ${this.factor}; resize to e.g. ${this.config.imageSize}×${this.config.imageSize}`);
    }
    if (!torch.isFloatingDtype(images.dtype)) throw new TypeError(`VQ tokenizer: images must be floating point in [-1, 1], got ${images.dtype}`);
  }
}

// ---- training step --------------------------------------------------------------------------------

export interface VqStepStats {
  loss: number; recLoss: number; commitLoss: number; perplexity: number; usedCodes: number;
  /** PSNR (dB) of this batch's reconstructions, before the step. */
  psnr: number;
  /** With a GAN: the decoder's adversarial loss and the discriminator's hinge loss (0 before `start`). */
  genLoss?: number; discLoss?: number;
}

/** Optimizer surface vqTrainStep needs (AdamW, SGD, …). */
export interface StepOptimizer { zeroGrad(): void; step(): void }

export interface VqGanOptions {
  disc: PatchDiscriminator;
  /** The discriminator's own optimizer. */
  opt: StepOptimizer;
  /** Weight of the adversarial loss in the tokenizer's loss (VQGAN: 0.8 × an adaptive factor; fixed here). */
  weight?: number;
  /** Training steps (counted by the caller) before the GAN starts: the discriminator only helps once reconstructions make sense. */
  start?: number;
  /** The caller's step count, compared with `start`. */
  step?: number;
}

/** PSNR in dB of images in [-1, 1] (peak-to-peak 2): 10·log10(4 / MSE), the same as for [0, 1] pixels. */
export function psnr(recon: Tensor, target: Tensor): number {
  const mse = torch.noGrad(() => torch.scope(() => torch.nn.mseLoss(recon.clamp(-1, 1), target).item()));
  return 10 * Math.log10(4 / Math.max(mse, 1e-12));
}

/**
 * One optimizer step on a batch of images (B, 3, H, W) in [-1, 1]; frees everything it made. The codebook
 * updates itself inside forward (EMA), so `opt` holds only `model.parameters()`. With `gan`, the decoder
 * also minimises the discriminator's score and the discriminator then takes one hinge-loss step.
 */
export function vqTrainStep(model: VqTokenizer, opt: StepOptimizer, images: Tensor, o: { clipNorm?: number; gan?: VqGanOptions } = {}): VqStepStats {
  return torch.scope(() => {
    model.train();
    opt.zeroGrad();
    const out = model.forward(images);
    const gan = o.gan && (o.gan.step ?? 0) >= (o.gan.start ?? 0) ? o.gan : undefined;
    let loss = out.loss;
    let genLoss: Tensor | undefined;
    if (gan) {
      gan.disc.train();
      genLoss = generatorLoss(gan.disc.forward(out.recon));
      loss = loss.add(genLoss.mul(gan.weight ?? 0.1));
    }
    loss.backward();
    if (o.clipNorm) clipGradNorm(model.parameters(), o.clipNorm);
    opt.step();
    let discLoss: number | undefined;
    if (gan) {
      gan.opt.zeroGrad();  // drops what the generator loss left on the discriminator
      const recon = out.recon.detach();
      const d = discriminatorHingeLoss(gan.disc.forward(images), gan.disc.forward(recon));
      d.backward();
      gan.opt.step();
      discLoss = d.item();
    }
    return {
      loss: loss.item(), recLoss: out.recLoss.item(), commitLoss: out.commitLoss.item(),
      perplexity: out.perplexity.item(), usedCodes: out.usedCodes.item(), psnr: psnr(out.recon, images),
      ...(o.gan ? { genLoss: genLoss?.item() ?? 0, discLoss: discLoss ?? 0 } : {}),
    };
  });
}

// ---- checkpoints ----------------------------------------------------------------------------------

const FORMAT = 'm6-vq-tokenizer';

/** Writes the weights and codebook to a safetensors file, the config as JSON in its metadata. */
export function saveVqTokenizer(path: string, model: VqTokenizer): void {
  saveSafetensors(path, model.stateDict(), { format: FORMAT, config: JSON.stringify(model.config) });
}

/** Rebuilds a tokenizer from a file written by saveVqTokenizer. */
export function loadVqTokenizer(path: string, opts: ModuleOptions = {}): VqTokenizer {
  const { tensors, metadata } = loadSafetensors(path);
  try {
    if (metadata.format !== FORMAT || !metadata.config) {
      throw new Error(`${path}: not a VQ tokenizer checkpoint (metadata format '${metadata.format ?? ''}', expected '${FORMAT}' with a config)`);
    }
    let config: Partial<VqConfig>;
    try { config = JSON.parse(metadata.config) as Partial<VqConfig>; } catch (e) { throw new Error(`${path}: VQ config metadata is not JSON (${(e as Error).message})`); }
    const model = new VqTokenizer(config, opts);
    model.loadStateDict(tensors);
    return model.eval();
  } finally {
    for (const t of tensors.values()) t.dispose();
  }
}
