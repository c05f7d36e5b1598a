// When tensors are freed. The JS garbage collector cannot see tensor memory, so m6 frees it
// deterministically (TorchSharp's dispose scopes):
//   - `scope(fn)` frees every tensor made while fn runs, except what fn returns (which moves to the
//     enclosing scope) and what is `keep()`-ed;
//   - `t.dispose()` / `using t = …` free one tensor now;
//   - a FinalizationRegistry frees tensors that live outside any scope once they are unreachable;
//     it is the safety net, not the plan.
// Sync scopes use a plain stack; `scopeAsync` keys the scope by AsyncLocalStorage so concurrent
// requests in a server never register into each other's scopes.
import { AsyncLocalStorage } from 'node:async_hooks';
import { native, type Handle } from './native.js';

/** What a scope needs of a tensor: its handle slot and the scope that owns it. */
export interface Owned {
  /** @internal */ _id: Handle;
  /** @internal */ _owner: Scope | null;
  /** @internal */ _finalized: boolean;
}

export class Scope {
  /** @internal */ readonly owned: Owned[] = [];
  constructor(readonly parent: Scope | undefined) {}

  adopt(t: Owned): void {
    t._owner = this;
    this.owned.push(t);
  }

  /** Frees what this scope still owns. */
  close(): void {
    const ids = new Uint32Array(this.owned.length);
    let n = 0;
    for (const t of this.owned) {
      if (t._owner === this && t._id !== 0) {
        ids[n++] = t._id;
        t._id = 0;
      }
    }
    this.owned.length = 0;
    if (n) native.freeMany(n === ids.length ? ids : ids.subarray(0, n));
  }
}

const syncStack: Scope[] = [];
const asyncScopes = new AsyncLocalStorage<Scope>();

const registry = new FinalizationRegistry<Handle>((id) => native.free(id));

export function currentScope(): Scope | undefined {
  return syncStack.length ? syncStack[syncStack.length - 1] : asyncScopes.getStore();
}

/** Registers a new tensor with the current scope, or with the finalizer when there is none. */
export function track(t: Owned): void {
  const s = currentScope();
  if (s) s.adopt(t);
  else finalizeLater(t);
}

function finalizeLater(t: Owned): void {
  t._owner = null;
  if (!t._finalized) {
    registry.register(t, t._id, t);
    t._finalized = true;
    // Only now does its memory depend on the GC: let V8 count it (scoped tensors are never counted).
    native.reportToGc(t._id);
  }
}

/** Frees one tensor now. */
export function release(t: Owned): void {
  if (t._id === 0) return;
  native.free(t._id);
  t._id = 0;
  if (t._finalized) {
    registry.unregister(t);
    t._finalized = false;
  }
}

/** Takes a tensor out of every scope: it lives until disposed or unreachable (parameters, caches). */
export function keep<T extends Owned>(t: T): T {
  finalizeLater(t);
  return t;
}

/** Moves a tensor to the scope enclosing `from` (or out of scopes entirely). */
function escape(t: Owned, from: Scope): void {
  if (t._owner !== from) return;
  if (from.parent) from.parent.adopt(t);
  else finalizeLater(t);
}

function isOwned(v: unknown): v is Owned {
  return typeof v === 'object' && v !== null && '_owner' in v && '_id' in v;
}

/** Walks a scope's result (a tensor, or arrays / plain objects / Maps holding tensors) and lets its tensors out. */
function escapeResult(v: unknown, from: Scope, seen = new Set<unknown>()): void {
  if (typeof v !== 'object' || v === null || seen.has(v)) return;
  seen.add(v);
  if (isOwned(v)) { escape(v, from); return; }
  if (Array.isArray(v)) { for (const x of v) escapeResult(x, from, seen); return; }
  if (v instanceof Map) { for (const x of v.values()) escapeResult(x, from, seen); return; }
  const proto = Object.getPrototypeOf(v);
  if (proto === Object.prototype || proto === null) for (const x of Object.values(v)) escapeResult(x, from, seen);
}

/**
 * Runs `fn`, then frees every tensor it created except those in its return value.
 * `fn` must be synchronous; use `scopeAsync` for async work.
 */
export function scope<T>(fn: () => T): T {
  const s = new Scope(currentScope());
  syncStack.push(s);
  let result: T;
  try {
    result = fn();
    if (result instanceof Promise) {
      throw new TypeError('scope(fn): fn returned a Promise; tensors made after its first await would escape the scope. Use scopeAsync(fn).');
    }
    escapeResult(result, s);
  } finally {
    syncStack.pop();
    s.close();
  }
  return result;
}

/** `scope` for async functions: the scope follows the async context (AsyncLocalStorage), not a global stack. */
export async function scopeAsync<T>(fn: () => Promise<T>): Promise<T> {
  if (syncStack.length) throw new Error('scopeAsync cannot start inside a synchronous scope()');
  const s = new Scope(asyncScopes.getStore());
  try {
    const result = await asyncScopes.run(s, fn);
    escapeResult(result, s);
    return result;
  } finally {
    s.close();
  }
}

/** Number of tensors alive in the native table (for tests: "no leak" is this staying flat). */
export function liveTensors(): number {
  return native.liveCount();
}

/** Bytes of CPU tensor storage alive in the native table (also reported to V8 as external memory). */
export function liveTensorBytes(): number {
  return native.liveBytes();
}
