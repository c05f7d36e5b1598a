// The engine bench's workload: a GPT-style pre-LN transformer written directly on the tensor API
// (no nn.Module), so that its step time measures the engine and nothing else. bench/engine_ref.py is
// the same model, op for op, in PyTorch; keep the two in step.
import * as torch from '../src/torch/index.js';
import { AdamW } from '../src/optim/index.js';

export interface BareConfig {
  layers: number; dim: number; heads: number; seq: number; batch: number; vocab: number;
  /**
   * Positions whose logits are computed and scored: the last `headPositions` of each row (default all
   * `seq`). The train bench sets it to M6's target length: M6 runs its head over the targets only, and
   * a reference that ran it over the whole sequence would do more work than the model it stands for.
   * (bench/engine_ref.py has no such option: the engine bench leaves it at `seq`.)
   */
  headPositions?: number;
}

export class BareTransformer {
  readonly params: torch.Tensor[] = [];
  private readonly wte: torch.Tensor;
  private readonly wpe: torch.Tensor;
  private readonly blocks: { ln1w: torch.Tensor; ln1b: torch.Tensor; wqkv: torch.Tensor; bqkv: torch.Tensor; wo: torch.Tensor; bo: torch.Tensor;
    ln2w: torch.Tensor; ln2b: torch.Tensor; w1: torch.Tensor; b1: torch.Tensor; w2: torch.Tensor; b2: torch.Tensor }[] = [];
  private readonly lnfw: torch.Tensor;
  private readonly lnfb: torch.Tensor;
  readonly opt: AdamW;

  constructor(readonly cfg: BareConfig) {
    const p = (shape: number[], init: 'normal' | 'zeros' | 'ones') => {
      const t = (init === 'normal' ? torch.randn(shape).mul_(0.02) : init === 'zeros' ? torch.zeros(shape) : torch.ones(shape)).requiresGrad_().keep();
      this.params.push(t);
      return t;
    };
    const d = cfg.dim;
    this.wte = p([cfg.vocab, d], 'normal');
    this.wpe = p([cfg.seq, d], 'normal');
    for (let i = 0; i < cfg.layers; i++) {
      this.blocks.push({
        ln1w: p([d], 'ones'), ln1b: p([d], 'zeros'), wqkv: p([3 * d, d], 'normal'), bqkv: p([3 * d], 'zeros'), wo: p([d, d], 'normal'), bo: p([d], 'zeros'),
        ln2w: p([d], 'ones'), ln2b: p([d], 'zeros'), w1: p([4 * d, d], 'normal'), b1: p([4 * d], 'zeros'), w2: p([d, 4 * d], 'normal'), b2: p([d], 'zeros'),
      });
    }
    this.lnfw = p([d], 'ones');
    this.lnfb = p([d], 'zeros');
    this.opt = new AdamW(this.params, { lr: 1e-4, weightDecay: 0.1 });
  }

  get parameterCount(): number { return this.params.reduce((n, t) => n + t.numel, 0); }

  get headPositions(): number { return this.cfg.headPositions ?? this.cfg.seq; }

  /** Model FLOPs of one training step (forward + backward ≈ 3× forward), as in the PaLM/nanoGPT MFU estimate. */
  get flopsPerStep(): number {
    const { layers, dim, seq, batch, vocab } = this.cfg;
    const attention = layers * 2 * seq * dim;  // QKᵀ and AV per token
    return 6 * batch * seq * (layers * 12 * dim * dim + attention) + 6 * batch * this.headPositions * vocab * dim;
  }

  loss(tokens: torch.Tensor, targets: torch.Tensor): torch.Tensor {
    const { batch: B, seq: T, dim: D, heads: H, vocab: V } = this.cfg;
    const F = torch.nn;
    const causal = torch.ones([T, T], { dtype: 'bool' }).tril();
    let x = F.embedding(tokens, this.wte).add(this.wpe);  // (B, T, D)
    for (const b of this.blocks) {
      // One scope per sub-layer, as m6's model code does: its temporaries are freed as soon as it returns
      // (autograd keeps what backward needs), so the allocator re-uses cache-warm memory.
      x = torch.scope(() => {
        const h = F.layerNorm(x, [D], b.ln1w, b.ln1b);
        const [q, k, v] = F.linear(h, b.wqkv, b.bqkv).split(D, -1)
          .map((t) => t.view(B, T, H, D / H).transpose(1, 2));  // (B, H, T, hd)
        const y = F.scaledDotProductAttention(q, k, v, { mask: causal }).transpose(1, 2).reshape(B, T, D);
        return x.add(F.linear(y, b.wo, b.bo));
      });
      x = torch.scope(() => x.add(F.linear(F.linear(F.layerNorm(x, [D], b.ln2w, b.ln2b), b.w1, b.b1).gelu(), b.w2, b.b2)));
    }
    const N = this.headPositions;
    if (N < T) x = x.narrow(1, T - N, N);
    const logits = F.linear(F.layerNorm(x, [D], this.lnfw, this.lnfb), this.wte);  // tied head
    const flat = logits.reshape(B * N, V).float();
    if (flat !== logits) logits.dispose();  // under bf16 autocast: the bf16 logits are not needed once cast
    return F.crossEntropy(flat, targets.reshape(B * N));
  }

  /** One training step: forward, backward, AdamW. Returns the loss. */
  step(tokens: torch.Tensor, targets: torch.Tensor, bf16: boolean): number {
    return torch.scope(() => {
      // The forward's own scope frees its activations' handles as soon as it returns: autograd keeps
      // what backward needs, and backward can then release each buffer as it goes (as in Python).
      const loss = torch.scope(() => (bf16 ? torch.autocast(() => this.loss(tokens, targets)) : this.loss(tokens, targets)));
      this.opt.zeroGrad();
      loss.backward();
      this.opt.step();
      return loss.item();
    });
  }
}
