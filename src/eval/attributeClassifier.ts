// The judge of generated product images: a small CNN trained on the real images of the same data,
// one softmax head per attribute (the synthetic catalog's category and colour; a labelled dataset's
// label). It says which attributes a designed image shows, and its penultimate layer is the feature
// space of the design evaluation's Fréchet distance (FID's recipe, with a judge that knows these
// products instead of ImageNet's Inception). Its own held-out accuracy is reported beside every use,
// because a judge that is often wrong makes every design score look worse than it is.
//
//   image (3, S, S) → [conv 3×3 stride 2 → GroupNorm → ReLU] × log2(S/4) → the 4×4 grid flattened
//   → Linear → ReLU = features (F) → one Linear head per attribute
// The grid is flattened, not averaged: where things are (a sleeve, a pattern's layout, a silhouette)
// tells garments apart, and a global mean would throw that away.
import { existsSync } from 'node:fs';
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';
import { Module, ModuleList, Conv2d, GroupNorm, Linear, type ModuleOptions } from '../nn/index.js';
import { AdamW, lrFactor } from '../optim/index.js';
import { loadSafetensors, saveSafetensors } from '../io/index.js';
import type { ImageBank } from '../data/imageBank.js';
import { deriveSeed, Rng } from '../data/random.js';

/** An attribute the classifier predicts and its classes (a class is an index into `classes`). */
export interface AttributeSpec {
  name: string;
  classes: string[];
}

export interface ClassifierConfig {
  imageSize: number;
  attributes: AttributeSpec[];
  /** Width of the first conv stage; doubles per stage up to 4×. */
  channels: number;
  /** F: width of the feature layer (the Fréchet distance's space). */
  features: number;
}

const FORMAT = 'm6-attribute-classifier';

export class AttributeClassifier extends Module {
  readonly config: ClassifierConfig;
  readonly convs: ModuleList<Conv2d>;
  readonly norms: ModuleList<GroupNorm>;
  readonly fc: Linear;
  readonly heads: ModuleList<Linear>;

  constructor(config: ClassifierConfig, opts: ModuleOptions = {}) {
    super();
    const c = (this.config = { ...config, attributes: config.attributes.map((a) => ({ name: a.name, classes: [...a.classes] })) });
    if (!(Number.isInteger(c.imageSize) && c.imageSize >= 8 && Number.isInteger(Math.log2(c.imageSize)))) throw new RangeError(`attribute classifier: imageSize must be a power of 2 ≥ 8, got ${c.imageSize}`);
    if (c.attributes.length === 0) throw new RangeError('attribute classifier: no attributes to predict');
    for (const a of c.attributes) if (a.classes.length < 2) throw new RangeError(`attribute classifier: '${a.name}' has ${a.classes.length} class(es); at least 2 are needed`);
    this.convs = this.module('convs', new ModuleList<Conv2d>());
    this.norms = this.module('norms', new ModuleList<GroupNorm>());
    let width = 3;
    for (let i = 0; i < Math.log2(c.imageSize / 4); i++) {
      const out = c.channels * Math.min(2 ** i, 4);
      this.convs.push(new Conv2d(width, out, 3, { ...opts, stride: 2, padding: 1 }));
      this.norms.push(new GroupNorm(Math.min(8, out), out, 1e-5, opts));
      width = out;
    }
    this.fc = this.module('fc', new Linear(width * 16, c.features, opts));
    this.heads = this.module('heads', new ModuleList<Linear>());
    for (const a of c.attributes) this.heads.push(new Linear(c.features, a.classes.length, opts));
  }

  /** Images (B, 3, S, S) in [-1, 1] → features (B, F) and one (B, classes) logits tensor per attribute. */
  forward(images: Tensor): { features: Tensor; logits: Tensor[] } {
    const S = this.config.imageSize;
    if (images.ndim !== 4 || images.shape[1] !== 3 || images.shape[2] !== S || images.shape[3] !== S) {
      throw new RangeError(`attribute classifier: expected images (B, 3, ${S}, ${S}), got [${images.shape}]`);
    }
    return torch.scope(() => {
      let h = images;
      this.convs.items.forEach((conv, i) => { h = this.norms.items[i]!.forward(conv.forward(h)).relu(); });  // (B, C, 4, 4)
      const features = this.fc.forward(h.flatten(1)).relu();  // (B, C·16) → (B, F)
      return { features, logits: this.heads.items.map((head) => head.forward(features)) };
    });
  }
}

export interface ClassifierPredictions {
  /** Per attribute, the predicted class index of each image. */
  predicted: number[][];
  /** (N, F) float32 features (the caller disposes it). */
  features: Tensor;
}

/** Predictions and features of every image of a bank (eval mode, no grad, in batches). */
export function classifyImages(model: AttributeClassifier, bank: ImageBank, batchSize = 64): ClassifierPredictions {
  const wasTraining = model.training;
  model.eval();
  try {
    const predicted: number[][] = model.config.attributes.map(() => []);
    const parts: Tensor[] = [];
    for (const { index } of bank.chunks(batchSize)) {
      torch.noGrad(() => torch.scope(() => {
        const out = model.forward(bank.batch(index));
        out.logits.forEach((l, a) => predicted[a]!.push(...(l.argmax(-1).toArray() as number[])));
        parts.push(out.features.keep());
      }));
    }
    const features = parts.length === 0 ? torch.zeros([0, model.config.features]) : torch.noGrad(() => torch.cat(parts, 0));
    if (parts.length > 0) for (const p of parts) p.dispose();
    return { predicted, features };
  } finally {
    model.train(wasTraining);
  }
}

/** Share of images whose predicted class equals the label, per attribute (labels[i][a] = class of image i). */
export function accuracies(predicted: readonly number[][], labels: readonly number[][]): number[] {
  return predicted.map((p, a) => (p.length === 0 ? 0 : p.filter((c, i) => c === labels[i]![a]).length / p.length));
}

/** Images mirrored left–right (aten::flip over the width). */
function mirror(x: Tensor): Tensor {
  const y = torch.call('aten::flip', '', [x, [3]]);
  if (!(y instanceof torch.Tensor)) throw new Error('aten::flip returned no tensor');
  return y;
}

export interface TrainClassifierOptions {
  config: ClassifierConfig;
  train: { bank: ImageBank; labels: number[][] };
  heldOut: { bank: ImageBank; labels: number[][] };
  steps: number;
  batchSize: number;
  lr: number;
  seed: number;
  log?: (message: string) => void;
}

export interface ClassifierReport {
  /** Held-out accuracy per attribute, by name. */
  accuracy: Record<string, number>;
  steps: number;
  trainImages: number;
  heldOutImages: number;
  seconds: number;
}

/**
 * Trains the classifier (AdamW, warmup then cosine; the images' horizontal mirror as augmentation,
 * which changes neither category nor colour) and measures it on the held-out images.
 */
export function trainAttributeClassifier(o: TrainClassifierOptions): { model: AttributeClassifier; report: ClassifierReport } {
  const started = Date.now();
  const n = o.train.bank.length;
  if (n === 0) throw new RangeError('attribute classifier: no training images');
  if (o.train.labels.length !== n) throw new RangeError(`attribute classifier: ${n} training images but ${o.train.labels.length} label rows`);
  torch.keepLargeAllocations();
  torch.manualSeed(deriveSeed(o.seed, 'classifier-init'));
  const model = new AttributeClassifier(o.config);
  const opt = new AdamW(model.parameters(), { lr: o.lr, weightDecay: 1e-4 });
  const rng = new Rng(deriveSeed(o.seed, 'classifier-batches'));
  const warmup = Math.max(1, Math.round(0.05 * o.steps));
  const every = Math.max(1, Math.round(o.steps / 5));
  let lossSum = 0, lossN = 0;
  model.train();
  try {
    for (let step = 0; step < o.steps; step++) {
      for (const g of opt.groups) g.hyper.lr = o.lr * lrFactor(step, warmup, o.steps, 0.05);
      const index = Array.from({ length: Math.min(o.batchSize, n) }, () => rng.int(n));
      const flip = rng.bool();
      lossSum += torch.scope(() => {
        opt.zeroGrad();
        let x = o.train.bank.batch(index);
        if (flip) x = mirror(x);
        const out = model.forward(x);
        let loss: Tensor | undefined;
        out.logits.forEach((l, a) => {
          const target = torch.tensor(Int32Array.from(index, (i) => o.train.labels[i]![a]!), { dtype: 'int64' });
          const ce = torch.nn.crossEntropy(l, target);
          loss = loss === undefined ? ce : loss.add(ce);
        });
        loss!.backward();
        opt.step();
        return loss!.item() / out.logits.length;
      });
      lossN++;
      if ((step + 1) % every === 0 || step + 1 === o.steps) {
        o.log?.(`attribute classifier step ${step + 1}/${o.steps}: loss ${(lossSum / lossN).toFixed(3)}`);
        lossSum = 0; lossN = 0;
      }
    }
  } catch (err) {
    model.dispose();
    throw err;
  } finally {
    for (const t of Object.values(opt.stateDict().tensors)) t.dispose();
  }
  model.eval();
  const held = classifyImages(model, o.heldOut.bank);
  held.features.dispose();
  const acc = accuracies(held.predicted, o.heldOut.labels);
  const report: ClassifierReport = {
    accuracy: Object.fromEntries(o.config.attributes.map((a, i) => [a.name, acc[i]!])),
    steps: o.steps, trainImages: n, heldOutImages: o.heldOut.bank.length, seconds: (Date.now() - started) / 1000,
  };
  return { model, report };
}

/** Writes the weights, the config and the report (and a key saying what data it was trained on). */
export function saveAttributeClassifier(file: string, model: AttributeClassifier, report: ClassifierReport, key: string): void {
  saveSafetensors(file, model.stateDict(), { format: FORMAT, config: JSON.stringify(model.config), report: JSON.stringify(report), key });
}

/** A classifier saved with this key, or undefined when the file is absent or was trained on something else. */
export function loadAttributeClassifier(file: string, key: string): { model: AttributeClassifier; report: ClassifierReport } | undefined {
  if (!existsSync(file)) return undefined;
  const { tensors, metadata } = loadSafetensors(file);
  try {
    if (metadata.format !== FORMAT || metadata.key !== key || !metadata.config || !metadata.report) return undefined;
    const model = new AttributeClassifier(JSON.parse(metadata.config) as ClassifierConfig);
    model.loadStateDict(tensors);
    model.eval();
    return { model, report: JSON.parse(metadata.report) as ClassifierReport };
  } finally {
    for (const t of tensors.values()) t.dispose();
  }
}
