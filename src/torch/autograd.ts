// Grad mode. libtorch keeps it per thread; m6's ops run on the main thread (and callAsync carries
// the mode to its worker), so setting it here is enough. Always restored in `finally`.
import { native } from './native.js';
import type { Tensor } from './tensor.js';

function withGradMode<T>(on: boolean, fn: () => T): T {
  const prev = native.gradEnabled();
  native.setGradEnabled(on);
  try {
    const r = fn();
    if (r instanceof Promise) throw new TypeError('noGrad/enableGrad take a synchronous function (grad mode is not async-aware)');
    return r;
  } finally {
    native.setGradEnabled(prev);
  }
}

/** Runs fn without recording autograd history (inference, optimizer updates). */
export function noGrad<T>(fn: () => T): T { return withGradMode(false, fn); }
/** Runs fn with autograd recording, even inside noGrad. */
export function enableGrad<T>(fn: () => T): T { return withGradMode(true, fn); }
export function isGradEnabled(): boolean { return native.gradEnabled(); }
export function setGradEnabled(on: boolean): void { native.setGradEnabled(on); }

/** Backward from several outputs at once (sum of their gradients). */
export function backward(outputs: Tensor[], gradients?: (Tensor | undefined)[], opts: { retainGraph?: boolean; createGraph?: boolean } = {}): void {
  native.backward(outputs.map((t) => t.handle), outputs.map((_, i) => gradients?.[i]?.handle ?? null), opts.retainGraph, opts.createGraph ?? false);
}
