// Module: a named tree of parameters, buffers and child modules (PyTorch's nn.Module; tch-rs's
// VarStore paths). State-dict keys come from how the tree is built: `blocks.0.attn.qkv.weight`.
import * as torch from '../torch/index.js';
import type { Device, DType, Tensor } from '../torch/index.js';
import { InputError } from '../torch/inputError.js';

export interface ModuleOptions { device?: Device; dtype?: DType }

export class StateDictError extends InputError {
  constructor(readonly missing: string[], readonly unexpected: string[], readonly mismatched: string[]) {
    const parts = [
      missing.length ? `missing keys: ${preview(missing)}` : '',
      unexpected.length ? `unexpected keys: ${preview(unexpected)}` : '',
      mismatched.length ? `shape/dtype mismatches: ${preview(mismatched)}` : '',
    ].filter(Boolean);
    super(`loadStateDict: ${parts.join('; ')}`);
    this.name = 'StateDictError';
  }
}

function preview(keys: string[]): string {
  return keys.length > 8 ? `${keys.slice(0, 8).join(', ')} … (${keys.length} in all)` : keys.join(', ');
}

export abstract class Module {
  training = true;
  private readonly _params = new Map<string, Tensor>();
  private readonly _buffers = new Map<string, Tensor>();
  private readonly _children = new Map<string, Module>();

  /** Registers a trainable tensor under `name` (it outlives every scope, and requires grad). */
  protected param(name: string, t: Tensor): Tensor {
    if (this._params.has(name) || this._children.has(name)) throw new Error(`${this.constructor.name}: '${name}' registered twice`);
    t.keep();
    if (!t.requiresGrad && torch.isFloatingDtype(t.dtype)) t.requiresGrad_();
    this._params.set(name, t);
    return t;
  }

  /** Registers a non-trainable tensor saved with the state (running statistics, codebooks updated by EMA). */
  protected buffer(name: string, t: Tensor): Tensor {
    t.keep();
    this._buffers.set(name, t);
    return t;
  }

  /** Registers a child module under `name`. */
  protected module<M extends Module>(name: string, m: M): M {
    if (this._children.has(name) || this._params.has(name)) throw new Error(`${this.constructor.name}: '${name}' registered twice`);
    this._children.set(name, m);
    return m;
  }

  /** Every parameter with its dotted name. A parameter shared by two modules is listed once (first name). */
  namedParameters(): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    const seen = new Set<Tensor>();
    this.walk('', (prefix, m) => {
      for (const [k, t] of m._params) if (!seen.has(t)) { seen.add(t); out.push([prefix + k, t]); }
    });
    return out;
  }

  parameters(): Tensor[] { return this.namedParameters().map(([, t]) => t); }

  namedBuffers(): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    this.walk('', (prefix, m) => { for (const [k, t] of m._buffers) out.push([prefix + k, t]); });
    return out;
  }

  namedModules(): [string, Module][] {
    const out: [string, Module][] = [];
    this.walk('', (prefix, m) => out.push([prefix.replace(/\.$/, ''), m]));
    return out;
  }

  children(): [string, Module][] { return [...this._children]; }

  private walk(prefix: string, fn: (prefix: string, m: Module) => void): void {
    fn(prefix, this);
    for (const [k, c] of this._children) c.walk(`${prefix}${k}.`, fn);
  }

  /** Parameters and buffers by name (tied weights appear once). The tensors are the module's own: do not dispose them. */
  stateDict(): Map<string, Tensor> {
    return new Map([...this.namedParameters(), ...this.namedBuffers()]);
  }

  /** Copies values in by name. Strict by default: any missing, unexpected or mis-shaped key is an error listing them all. */
  loadStateDict(state: Map<string, Tensor>, opts: { strict?: boolean } = {}): { missing: string[]; unexpected: string[] } {
    const own = this.stateDict();
    const missing = [...own.keys()].filter((k) => !state.has(k));
    const unexpected = [...state.keys()].filter((k) => !own.has(k));
    const mismatched: string[] = [];
    for (const [k, t] of state) {
      const mine = own.get(k);
      if (mine && (mine.shape.join() !== t.shape.join())) mismatched.push(`${k} (checkpoint [${t.shape}], model [${mine.shape}])`);
    }
    if (mismatched.length || ((opts.strict ?? true) && (missing.length || unexpected.length))) {
      throw new StateDictError(missing, unexpected, mismatched);
    }
    torch.noGrad(() => torch.scope(() => {
      for (const [k, t] of state) {
        const mine = own.get(k);
        if (mine) mine.copy_(t.to({ dtype: mine.dtype, device: mine.device }));
      }
    }));
    return { missing, unexpected };
  }

  /** Moves/casts every parameter and buffer in place (their identity is kept: optimizers stay valid). */
  to(target: { device?: Device; dtype?: DType }): this {
    torch.noGrad(() => {
      for (const [, t] of [...this.namedParameters(), ...this.namedBuffers()]) {
        const floating = torch.isFloatingDtype(t.dtype);
        const next = t.to({ device: target.device, dtype: floating ? target.dtype : undefined });
        t.setData_(next);
        next.dispose();
      }
    });
    return this;
  }

  train(on = true): this {
    this.walk('', (_, m) => { m.training = on; });
    return this;
  }

  eval(): this { return this.train(false); }

  /** Number of parameter elements (shared weights counted once). */
  numParameters(): number { return this.parameters().reduce((n, t) => n + t.numel, 0); }

  /** Frees every parameter and buffer of this tree. */
  dispose(): void {
    for (const [, t] of [...this.namedParameters(), ...this.namedBuffers()]) t.dispose();
  }
}

/** A list of modules registered as `0`, `1`, … (PyTorch's ModuleList). */
export class ModuleList<M extends Module> extends Module {
  readonly items: M[] = [];
  constructor(items: M[] = []) {
    super();
    items.forEach((m) => this.push(m));
  }
  push(m: M): void {
    this.module(String(this.items.length), m);
    this.items.push(m);
  }
  get length(): number { return this.items.length; }
  [Symbol.iterator](): Iterator<M> { return this.items[Symbol.iterator](); }
}
