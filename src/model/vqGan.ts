// The optional adversarial part of VQGAN (Esser et al. 2021): a PatchGAN discriminator (pix2pix,
// Isola et al. 2017) that scores overlapping patches as real or reconstructed, and hinge losses.
// A reconstruction loss alone makes blurry textures; a patch critic pushes the decoder toward sharp
// ones. Off by default: `vqTrainStep` uses it only when given `{ gan: { disc, opt } }`, and VQGAN
// turns it on only after the autoencoder has converged somewhat (`start`).
// Not here: VQGAN's adaptive weight (‖∇rec‖ / ‖∇gan‖ at the decoder's last layer, which needs
// gradients of two losses w.r.t. one tensor) and the LPIPS perceptual loss; the weight is fixed.
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';
import { Module, GroupNorm, ModuleList, Conv2d, type ModuleOptions } from '../nn/index.js';

export interface PatchDiscriminatorConfig {
  /** Width of the first layer; doubles per layer up to 8×. */
  channels: number;
  /** Stride-2 layers: the receptive field of one score grows with them (3 → 70×70 px in pix2pix). */
  layers: number;
}

/** Images (B, 3, H, W) in [-1, 1] → patch logits (B, 1, h, w): positive = looks real. */
export class PatchDiscriminator extends Module {
  readonly convs = this.module('convs', new ModuleList<Conv2d>());
  readonly norms = this.module('norms', new ModuleList<GroupNorm>());
  readonly config: PatchDiscriminatorConfig;

  constructor(config: Partial<PatchDiscriminatorConfig> = {}, opts: ModuleOptions = {}) {
    super();
    const c = (this.config = { channels: 32, layers: 3, ...config });
    if (!(Number.isInteger(c.channels) && c.channels >= 4 && c.channels % 4 === 0)) throw new RangeError(`PatchDiscriminator: channels must be a multiple of 4, got ${c.channels}`);
    if (!(Number.isInteger(c.layers) && c.layers >= 1)) throw new RangeError(`PatchDiscriminator: layers must be a positive integer, got ${c.layers}`);
    let width = 3;
    for (let i = 0; i <= c.layers; i++) {
      const out = c.channels * Math.min(2 ** i, 8);
      // Stride 2 for `layers` layers, then one stride-1 layer before the 1-channel scoring conv (pix2pix's layout).
      this.convs.push(new Conv2d(width, out, 4, { ...opts, stride: i < c.layers ? 2 : 1, padding: 1 }));
      if (i > 0) this.norms.push(new GroupNorm(4, out, 1e-5, opts));  // no norm on the first layer, as in pix2pix
      width = out;
    }
    this.convs.push(new Conv2d(width, 1, 4, { ...opts, padding: 1 }));
  }

  forward(images: Tensor): Tensor {
    return torch.scope(() => {
      const convs = this.convs.items;
      let h = images;
      for (let i = 0; i < convs.length - 1; i++) {
        h = convs[i].forward(h);
        if (i > 0) h = this.norms.items[i - 1].forward(h);
        h = leakyRelu(h, 0.2);
      }
      return convs[convs.length - 1].forward(h);  // (B, 1, h, w)
    });
  }
}

function leakyRelu(x: Tensor, slope: number): Tensor {
  const y = torch.call('aten::leaky_relu', '', [x, slope]);
  if (!(y instanceof torch.Tensor)) throw new Error('aten::leaky_relu returned no tensor');
  return y;
}

/** Hinge loss of the discriminator: mean(relu(1 − D(real))) + mean(relu(1 + D(fake))), halved as in VQGAN. */
export function discriminatorHingeLoss(realLogits: Tensor, fakeLogits: Tensor): Tensor {
  return torch.scope(() => realLogits.rsub(1).relu().mean().add(fakeLogits.add(1).relu().mean()).mul(0.5));
}

/** The generator's (decoder's) adversarial loss: −mean(D(fake)). */
export function generatorLoss(fakeLogits: Tensor): Tensor {
  return fakeLogits.mean().neg();
}
