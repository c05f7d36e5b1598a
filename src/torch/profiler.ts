// Where the milliseconds go inside libtorch: every dispatcher op and autograd node timed through
// libtorch's own RecordFunction hooks (native/src/profiler.cc), summed per name (and, when asked, per
// input shapes), split by pass: an op inside an autograd node belongs to the backward pass. Self
// time is an op's time less the ops it called, so self times add up to the time spent in libtorch.
import { native } from './native.js';

export interface OpTiming {
  /** 'aten::mm', 'MmBackward0', …; with shapes, followed by the tensor inputs' sizes and dtypes. */
  name: string;
  pass: 'forward' | 'backward';
  calls: number;
  totalMs: number;
  selfMs: number;
  /** The part of totalMs in calls from outside libtorch (not from within another op): these add up to the wall time spent in libtorch. */
  topLevelMs: number;
}

let recording = false;

/** Starts timing every op (input shapes too, at a few µs more per op, when `shapes`). One recording at a time per process. */
export function startOpProfile(opts: { shapes?: boolean } = {}): void {
  if (recording) throw new Error('startOpProfile: a profile is already recording: stopOpProfile() first');
  native.profilerStart(opts.shapes === true);
  recording = true;
}

/** Stops the recording and returns its table, largest self time first. */
export function stopOpProfile(): OpTiming[] {
  if (!recording) throw new Error('stopOpProfile: no profile is recording: startOpProfile() first');
  recording = false;
  return native.profilerStop().map((r) => {
    const tab = r.key.indexOf('\t');
    return { name: r.key.slice(tab + 1), pass: r.key.slice(0, tab) as OpTiming['pass'], calls: r.calls, totalMs: r.totalUs / 1000, selfMs: r.selfUs / 1000, topLevelMs: r.topLevelUs / 1000 };
  }).sort((a, b) => b.selfMs - a.selfMs);
}

/** Runs `fn` under the profiler: its result and the ops' table (the profile stops even when `fn` throws). */
export function profileOps<T>(fn: () => T, opts: { shapes?: boolean } = {}): { result: T; ops: OpTiming[] } {
  startOpProfile(opts);
  let result: T;
  let ops: OpTiming[] = [];
  try {
    result = fn();
  } finally {
    ops = stopOpProfile();
  }
  return { result, ops };
}

/**
 * The family an op belongs to, for a table by what the time buys: matmul, conv, attention's softmax,
 * norms, embeddings, the loss, elementwise math, reductions, copies and layout, the optimizer's
 * updates, and autograd's own bookkeeping (an autograd node's self time, gradient accumulation).
 */
export function opFamily(name: string): string {
  const op = name.replace(/^aten::/, '').replace(/ \[.*$/, '').replace(/^autograd::engine::evaluate_function: /, '');
  if (/Backward\d*$|^torch::autograd::|^autograd::/.test(op)) return 'autograd nodes';
  if (/^(mm|addmm|bmm|baddbmm|matmul|linear|addmv|mv|dot|_mkldnn_matmul|mkldnn_matmul)$/.test(op)) return 'matmul';
  if (/conv|im2col|col2im/.test(op)) return 'conv';
  if (/softmax|scaled_dot_product|_flash_attention|masked_fill/.test(op)) return 'softmax and masks';
  if (/norm/.test(op)) return 'norms';
  if (/embedding|index_select|index_add|index_put|^index$|gather|scatter/.test(op)) return 'embedding and indexing';
  if (/nll_loss|cross_entropy|logsumexp/.test(op)) return 'loss';
  if (/^_?foreach_|^add[cd]iv_|^lerp|^sqrt|^_fused_adam/.test(op)) return 'optimizer';
  if (/^(copy_|_to_copy|to|contiguous|clone|cat|stack|empty|empty_like|zeros|zeros_like|ones|ones_like|full|fill_|zero_|new_zeros|new_empty|resize_|as_strided|view|reshape|_reshape_alias|_unsafe_view|transpose|t|permute|expand|unsqueeze|squeeze|select|slice|narrow|split|chunk|unbind|flatten|detach|alias|set_|pad|constant_pad_nd|arange)$/.test(op)) return 'copies and layout';
  if (/^(sum|mean|max|min|amax|amin|argmax|argmin|norm|var|std|all|any|cumsum|topk|sort|prod|count_nonzero|_local_scalar_dense|item)/.test(op)) return 'reductions';
  return 'elementwise';
}

export interface FamilyTiming { family: string; pass: 'forward' | 'backward'; selfMs: number; calls: number }

/** Self time per family and pass, largest first. */
export function byFamily(ops: readonly OpTiming[]): FamilyTiming[] {
  const m = new Map<string, FamilyTiming>();
  for (const o of ops) {
    const family = opFamily(o.name);
    const k = `${o.pass}\t${family}`;
    const f = m.get(k) ?? { family, pass: o.pass, selfMs: 0, calls: 0 };
    f.selfMs += o.selfMs;
    f.calls += o.calls;
    m.set(k, f);
  }
  return [...m.values()].sort((a, b) => b.selfMs - a.selfMs);
}
