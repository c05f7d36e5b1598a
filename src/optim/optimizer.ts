// The optimizer base: parameter groups with their own hyper-parameters (PyTorch's param_groups),
// per-parameter state tensors, zeroGrad, and a state dict for checkpoints.
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/tensor.js';
import { InputError } from '../torch/inputError.js';

export interface ParamGroup<H> { params: Tensor[]; hyper: H }
export type ParamGroupSpec<H> = { params: Tensor[] } & Partial<H>;

export interface OptimizerState {
  /** State tensors by key `"<param index>.<name>"` (param index over all groups, in order). */
  tensors: Record<string, Tensor>;
  /** Step counts and hyper-parameters of each group. */
  meta: { step: number; groups: Record<string, number>[] };
}

export abstract class Optimizer<H extends { [K in keyof H]: number }> {
  readonly groups: ParamGroup<H>[];
  /** Optimizer steps taken so far. */
  stepCount = 0;

  constructor(params: Tensor[] | ParamGroupSpec<H>[], defaults: H) {
    const specs: ParamGroupSpec<H>[] = params.length && !isGroupSpec(params[0]) ? [{ params: params as Tensor[] } as ParamGroupSpec<H>] : (params as ParamGroupSpec<H>[]);
    this.groups = specs.map((s) => {
      const { params: ps, ...rest } = s;
      for (const p of ps) {
        if (!p.requiresGrad) throw new TypeError(`optimizer: a parameter (${p}) does not require grad; set requiresGrad or leave it out`);
      }
      return { params: ps, hyper: { ...defaults, ...(rest as unknown as Partial<H>) } as H };
    });
    const seen = new Set<number>();
    for (const p of this.groups.flatMap((g) => g.params)) {
      if (seen.has(p.handle)) throw new TypeError('optimizer: a parameter appears in more than one group');
      seen.add(p.handle);
    }
  }

  /** All parameters, in group order. */
  get params(): Tensor[] { return this.groups.flatMap((g) => g.params); }

  /**
   * Resets gradients. By default drops them (PyTorch's zero_grad(set_to_none=True)): the next backward
   * allocates fresh ones. `setToNone: false` zeroes them in place instead, so their memory is reused
   * step after step (cheaper for very large models, e.g. many experts).
   */
  zeroGrad(setToNone = true): void {
    if (setToNone) {
      for (const p of this.params) p.grad = undefined;
      return;
    }
    torch.noGrad(() => torch.scope(() => {
      for (const p of this.params) p.grad?.zero_();
    }));
  }

  abstract step(): void;

  /** Named state tensors of each parameter (moments, momentum buffers). */
  protected abstract stateOf(paramIndex: number): Record<string, Tensor>;
  protected abstract setStateOf(paramIndex: number, state: Record<string, Tensor>): void;

  stateDict(): OptimizerState {
    const tensors: Record<string, Tensor> = {};
    this.params.forEach((_, i) => {
      for (const [k, t] of Object.entries(this.stateOf(i))) tensors[`${i}.${k}`] = t;
    });
    return { tensors, meta: { step: this.stepCount, groups: this.groups.map((g) => ({ ...g.hyper }) as Record<string, number>) } };
  }

  loadStateDict(state: OptimizerState): void {
    if (state.meta.groups.length !== this.groups.length) {
      throw new OptimizerStateError(`optimizer state has ${state.meta.groups.length} parameter groups, this optimizer has ${this.groups.length}`);
    }
    this.stepCount = state.meta.step;
    state.meta.groups.forEach((h, i) => Object.assign(this.groups[i].hyper as object, h));
    const byParam = new Map<number, Record<string, Tensor>>();
    for (const [key, t] of Object.entries(state.tensors)) {
      const dot = key.indexOf('.');
      const i = Number(key.slice(0, dot));
      if (!Number.isInteger(i) || i < 0 || i >= this.params.length) throw new OptimizerStateError(`optimizer state key '${key}' names no parameter (there are ${this.params.length})`);
      const p = this.params[i];
      if (t.shape.join() !== p.shape.join()) throw new OptimizerStateError(`optimizer state '${key}' has shape [${t.shape}], parameter ${i} has [${p.shape}]`);
      byParam.set(i, { ...(byParam.get(i) ?? {}), [key.slice(dot + 1)]: t });
    }
    for (const [i, s] of byParam) this.setStateOf(i, s);
  }
}

function isGroupSpec(v: unknown): boolean {
  return typeof v === 'object' && v !== null && 'params' in v && Array.isArray((v as { params: unknown }).params);
}

/** Saved optimizer state that does not fit this optimizer's parameters (another model's checkpoint). */
export class OptimizerStateError extends InputError {
  constructor(message: string) {
    super(message);
    this.name = 'OptimizerStateError';
  }
}
