// AdamW (Loshchilov & Hutter): Adam with weight decay decoupled from the gradient, bias-corrected
// moments. Same update as torch.optim.AdamW (amsgrad=False, maximize=False):
//   p ← p·(1 − lr·wd);  m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²;
//   p ← p − lr/(1−β1ᵗ) · m / (√v/√(1−β2ᵗ) + ε)
import { noGrad } from '../torch/autograd.js';
import { scope, keep } from '../torch/scope.js';
import { zerosLike, type Tensor } from '../torch/tensor.js';
import { foreachAddcdiv_, foreachAddcmul_, foreachAddList_, foreachAdd_, foreachDiv_, foreachMul_, foreachSqrt } from './foreach.js';
import { Optimizer, type ParamGroupSpec } from './optimizer.js';

export interface AdamWHyper { lr: number; beta1: number; beta2: number; eps: number; weightDecay: number }

export class AdamW extends Optimizer<AdamWHyper> {
  private readonly expAvg = new Map<number, Tensor>();
  private readonly expAvgSq = new Map<number, Tensor>();

  constructor(params: Tensor[] | ParamGroupSpec<AdamWHyper>[], opts: Partial<AdamWHyper> = {}) {
    const d: AdamWHyper = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 1e-2, ...opts };
    if (d.lr < 0 || d.eps < 0 || d.beta1 < 0 || d.beta1 >= 1 || d.beta2 < 0 || d.beta2 >= 1) throw new RangeError(`AdamW: invalid hyper-parameters ${JSON.stringify(d)}`);
    super(params, d);
  }

  step(): void {
    this.stepCount++;
    const t = this.stepCount;
    let index = 0;
    noGrad(() => scope(() => {
      for (const group of this.groups) {
        const { lr, beta1, beta2, eps, weightDecay } = group.hyper;
        const ps: Tensor[] = [], gs: Tensor[] = [], ms: Tensor[] = [], vs: Tensor[] = [];
        for (const p of group.params) {
          const i = index++;
          const g = p.grad;
          if (!g) continue;
          let m = this.expAvg.get(i), v = this.expAvgSq.get(i);
          if (!m || !v) {
            m = keep(zerosLike(p));
            v = keep(zerosLike(p));
            this.expAvg.set(i, m);
            this.expAvgSq.set(i, v);
          }
          ps.push(p); gs.push(g); ms.push(m); vs.push(v);
        }
        if (!ps.length) continue;
        if (weightDecay !== 0) foreachMul_(ps, 1 - lr * weightDecay);
        foreachMul_(ms, beta1);
        foreachAddList_(ms, gs, 1 - beta1);
        foreachMul_(vs, beta2);
        foreachAddcmul_(vs, gs, gs, 1 - beta2);
        const bc1 = 1 - beta1 ** t;
        const bc2Sqrt = Math.sqrt(1 - beta2 ** t);
        const denom = foreachSqrt(vs);
        foreachDiv_(denom, bc2Sqrt);
        foreachAdd_(denom, eps);
        foreachAddcdiv_(ps, ms, denom, -lr / bc1);
      }
    }));
  }

  protected stateOf(i: number): Record<string, Tensor> {
    const m = this.expAvg.get(i), v = this.expAvgSq.get(i);
    return m && v ? { expAvg: m, expAvgSq: v } : {};
  }

  protected setStateOf(i: number, s: Record<string, Tensor>): void {
    if (!s.expAvg || !s.expAvgSq) throw new Error(`AdamW state of parameter ${i} needs expAvg and expAvgSq`);
    this.expAvg.get(i)?.dispose();
    this.expAvgSq.get(i)?.dispose();
    this.expAvg.set(i, keep(s.expAvg.clone()));
    this.expAvgSq.set(i, keep(s.expAvgSq.clone()));
  }
}
