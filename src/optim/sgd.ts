// SGD with momentum (and Nesterov), with coupled weight decay, as torch.optim.SGD:
//   g ← g + wd·p;  b ← μ·b + (1−dampening)·g (b = g on the first step);  p ← p − lr·(nesterov ? g + μ·b : b)
import { noGrad } from '../torch/autograd.js';
import { scope, keep } from '../torch/scope.js';
import type { Tensor } from '../torch/tensor.js';
import { Optimizer, type ParamGroupSpec } from './optimizer.js';

export interface SgdHyper { lr: number; momentum: number; dampening: number; weightDecay: number; nesterov: number }

export class SGD extends Optimizer<SgdHyper> {
  private readonly buffers = new Map<number, Tensor>();

  constructor(params: Tensor[] | ParamGroupSpec<SgdHyper>[], opts: Partial<Omit<SgdHyper, 'nesterov'>> & { nesterov?: boolean } = {}) {
    const { nesterov, ...rest } = opts;
    super(params, { lr: 1e-2, momentum: 0, dampening: 0, weightDecay: 0, ...rest, nesterov: nesterov ? 1 : 0 });
  }

  step(): void {
    this.stepCount++;
    let index = 0;
    noGrad(() => scope(() => {
      for (const group of this.groups) {
        const { lr, momentum, dampening, weightDecay, nesterov } = group.hyper;
        for (const p of group.params) {
          const i = index++;
          let g = p.grad;
          if (!g) continue;
          if (weightDecay !== 0) g = g.add(p, weightDecay);
          if (momentum !== 0) {
            let b = this.buffers.get(i);
            if (!b) {
              b = keep(g.clone());
              this.buffers.set(i, b);
            } else {
              b.mul_(momentum).add_(g, 1 - dampening);
            }
            g = nesterov ? g.add(b, momentum) : b;
          }
          p.add_(g, -lr);
        }
      }
    }));
  }

  protected stateOf(i: number): Record<string, Tensor> {
    const b = this.buffers.get(i);
    return b ? { momentumBuffer: b } : {};
  }

  protected setStateOf(i: number, s: Record<string, Tensor>): void {
    this.buffers.get(i)?.dispose();
    this.buffers.set(i, keep(s.momentumBuffer.clone()));
  }
}
