// The codebook of the VQ image tokenizer: nearest-code quantization with a straight-through
// gradient, a commitment loss, and a codebook learned by exponential moving averages (VQ-VAE-2,
// van den Oord et al. 2017 appendix; Razavi et al. 2019) rather than by gradients. EMA codebooks
// train faster and more stably than the codebook loss, and they leave the optimizer out of it:
// the codebook is a set of buffers that `forward` updates in place while the module is training,
// like BatchNorm's running statistics.
//
// Codes nobody picks are the failure mode of VQ (codebook collapse). Two remedies here: the first
// training batch seeds the codebook with encoder outputs (so codes start where the data is), and a
// code unused for `deadCodeSteps` training steps is restarted from a random encoder output of the
// current batch (Jukebox, Dhariwal et al. 2020).
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';
import { Module, type ModuleOptions } from '../nn/index.js';

export interface CodebookOptions {
  /** K: number of codes. */
  size: number;
  /** D: width of a code vector (the encoder's output channels). */
  dim: number;
  /** EMA decay of the cluster sizes and sums (0.99 is the usual value; lower adapts faster). */
  decay: number;
  /** Laplace smoothing of cluster sizes, so a code with no members never divides by zero. */
  eps: number;
  /** β: weight of the commitment loss ‖z_e − sg(z_q)‖² that keeps the encoder near its codes. */
  commitment: number;
  /** A code unused for this many training steps is restarted from the current batch (0: never). */
  deadCodeSteps: number;
  /** Seed the codebook with random encoder outputs of the first training batch. */
  initFromData: boolean;
}

export interface QuantizeOutput {
  /** (B, D, h, w) code vectors, straight-through: the forward value is the codes', the gradient goes to z_e. */
  zq: Tensor;
  /** (B, h, w) int64 code indices. */
  codes: Tensor;
  /** Scalar β‖z_e − sg(z_q)‖². */
  commitLoss: Tensor;
  /** Scalar exp(entropy of the batch's code usage): K when every code is used equally, 1 when one code takes all. */
  perplexity: Tensor;
  /** Scalar int64: distinct codes used by the batch. */
  usedCodes: Tensor;
}

/** Runs fn with CPU and CUDA autocast off. */
function withoutAutocast<T>(fn: () => T): T {
  return torch.autocast(() => torch.autocast(fn, { device: 'cuda', enabled: false }), { device: 'cpu', enabled: false });
}

/** Rows of the distance matrix computed at once: bounds memory at 4096 × K floats (128 MiB at K = 8192). */
const NEAREST_CHUNK = 4096;

export class EmaCodebook extends Module {
  /** (K, D) the code vectors = embedSum / smoothed clusterSize. */
  readonly embedding: Tensor;
  /** (K) EMA of how many encoder outputs each code received per step. */
  readonly clusterSize: Tensor;
  /** (K, D) EMA of the sum of the encoder outputs each code received. */
  readonly embedSum: Tensor;
  /** (K) training steps since each code was last used. */
  readonly unusedSteps: Tensor;
  /** () 1 once the codebook was seeded from data; saved so a loaded tokenizer is never re-seeded. */
  readonly initialized: Tensor;

  constructor(readonly o: CodebookOptions, opts: ModuleOptions = {}) {
    super();
    const { size: K, dim: D } = o;
    if (!(Number.isInteger(K) && K >= 2)) throw new RangeError(`codebook size must be an integer ≥ 2, got ${K}`);
    if (!(Number.isInteger(D) && D >= 1)) throw new RangeError(`codebook dim must be a positive integer, got ${D}`);
    if (!(o.decay >= 0 && o.decay < 1)) throw new RangeError(`codebook decay must be in [0, 1), got ${o.decay}`);
    const t = { dtype: opts.dtype ?? 'float32', device: opts.device } as const;
    // Uniform(±1/K) as in VQ-VAE; replaced by data when initFromData is on.
    this.embedding = this.buffer('embedding', torch.rand([K, D], t).mul_(2 / K).add_(-1 / K));
    // clusterSize starts at 1 with embedSum = embedding, so embedding = embedSum / size holds from the first
    // step and an unused code decays numerator and denominator alike instead of blowing up.
    this.clusterSize = this.buffer('clusterSize', torch.ones([K], t));
    this.embedSum = this.buffer('embedSum', this.embedding.clone());
    this.unusedSteps = this.buffer('unusedSteps', torch.zeros([K], t));
    this.initialized = this.buffer('initialized', torch.zeros([], t));
  }

  get size(): number { return this.o.size; }

  /** Index of the nearest code (squared Euclidean) of each row of z (N, D) → (N) int64. */
  nearest(z: Tensor): Tensor {
    // Distances in the codebook's precision even under autocast: in bf16, near-ties pick the wrong code.
    return withoutAutocast(() => torch.noGrad(() => torch.scope(() => {
      const e = this.embedding;
      const eSq = e.square().sum(1);  // (K); ‖z‖² is the same for every code of a row, so argmin skips it
      const eT = e.T;
      const zf = z.to(e.dtype);
      const N = zf.shape[0];
      const parts: Tensor[] = [];
      for (let s = 0; s < N; s += NEAREST_CHUNK) {
        const zc = zf.narrow(0, s, Math.min(NEAREST_CHUNK, N - s));
        parts.push(torch.addmm(eSq, zc, eT, { alpha: -2 }).argmin(1));  // ‖e‖² − 2 z·e: (n, K) → (n)
      }
      return parts.length === 1 ? parts[0] : torch.cat(parts);
    })));
  }

  /** Code vectors of int64 codes of any shape (…) → (…, D). */
  lookup(codes: Tensor): Tensor {
    return torch.nn.embedding(codes, this.embedding);
  }

  /** Quantizes encoder outputs zE (B, D, h, w); while training, also updates the codebook by EMA. */
  forward(zE: Tensor): QuantizeOutput {
    return torch.scope(() => {
      const [B, D, h, w] = zE.shape;
      if (D !== this.o.dim) throw new RangeError(`codebook: encoder output has ${D} channels, codes have ${this.o.dim}`);
      const z = zE.permute(0, 2, 3, 1).reshape(-1, D);  // (N, D), N = B·h·w
      const zDetached = z.detach().to(this.embedding.dtype);  // EMA statistics stay in the codebook's precision
      if (this.training && this.o.initFromData && this.initialized.item() === 0) this.seedFromData(zDetached);
      const codes = this.nearest(zDetached);  // (N)
      const zqFlat = this.lookup(codes).to(z.dtype);  // (N, D); a buffer, so no gradient flows into the codebook
      const counts = torch.noGrad(() => codes.bincount(undefined, this.o.size).to(zDetached.dtype));  // (K)
      const commitLoss = torch.nn.mseLoss(z, zqFlat).mul(this.o.commitment);
      // Straight-through estimator: forward z_q, backward the identity to z_e.
      const zqSt = z.add(zqFlat.sub(z).detach());
      const zq = zqSt.view(B, h, w, D).permute(0, 3, 1, 2);  // (B, D, h, w)
      const stats = torch.noGrad(() => {
        const p = counts.div(codes.shape[0]);
        const entropy = p.mul(p.add(1e-10).log()).sum().neg();
        return { perplexity: entropy.exp(), usedCodes: counts.gt(0).sum() };
      });
      if (this.training) this.update(zDetached, codes, counts);
      return { zq, codes: codes.view(B, h, w), commitLoss, ...stats };
    });
  }

  /**
   * One EMA step from encoder outputs z (N, D) assigned to `codes` (N), then the dead-code restart:
   *   n_k ← γ n_k + (1−γ) |{i: c_i = k}|          m_k ← γ m_k + (1−γ) Σ_{c_i = k} z_i
   *   ñ_k = (n_k + ε) / (Σn + Kε) · Σn             e_k = m_k / ñ_k
   */
  update(z: Tensor, codes: Tensor, counts?: Tensor): void {
    const { size: K, decay, eps, deadCodeSteps } = this.o;
    torch.noGrad(() => torch.scope(() => {
      const n = counts ?? codes.bincount(undefined, K).to(z.dtype);  // (K)
      const sums = torch.zeros([K, this.o.dim], { dtype: z.dtype, device: z.device }).indexAdd(0, codes, z);  // (K, D)
      this.clusterSize.mul_(decay).add_(n, 1 - decay);
      this.embedSum.mul_(decay).add_(sums, 1 - decay);
      const total = this.clusterSize.sum();
      const smoothed = this.clusterSize.add(eps).div(total.add(K * eps)).mul(total);  // (K)
      this.embedding.copy_(this.embedSum.div(smoothed.unsqueeze(1)));
      this.unusedSteps.add_(1).maskedFill_(n.gt(0), 0);
      if (deadCodeSteps > 0) this.restartDead(z);
    }));
  }

  /** Codes unused for deadCodeSteps steps take random rows of z (N, D). No host sync: a mask, not a loop. */
  private restartDead(z: Tensor): void {
    torch.noGrad(() => torch.scope(() => {
      const K = this.o.size;
      const dead = this.unusedSteps.ge(this.o.deadCodeSteps);  // (K) bool
      const fresh = z.index(torch.randint(0, z.shape[0], [K], { device: z.device }));  // (K, D)
      const dead2 = dead.unsqueeze(1);  // (K, 1)
      this.embedding.copy_(torch.where(dead2, fresh, this.embedding));
      this.embedSum.copy_(torch.where(dead2, fresh, this.embedSum));  // with clusterSize 1, e_k = m_k
      this.clusterSize.maskedFill_(dead, 1);
      this.unusedSteps.maskedFill_(dead, 0);
    }));
  }

  /** Seeds every code with a random row of z (N, D) (with replacement when N < K). */
  private seedFromData(z: Tensor): void {
    torch.noGrad(() => torch.scope(() => {
      const K = this.o.size;
      const pick = z.shape[0] >= K
        ? torch.randn([z.shape[0]], { device: z.device }).argsort().narrow(0, 0, K)  // distinct rows
        : torch.randint(0, z.shape[0], [K], { device: z.device });
      const rows = z.index(pick);  // (K, D)
      this.embedding.copy_(rows);
      this.embedSum.copy_(rows);
      this.clusterSize.fill_(1);
      this.unusedSteps.zero_();
      this.initialized.fill_(1);
    }));
  }
}
