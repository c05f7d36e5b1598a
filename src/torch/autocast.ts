// Mixed precision: inside `autocast`, libtorch runs matmul-like ops (linear, matmul, conv, bmm…) in
// the low-precision dtype and keeps precision-sensitive ones (softmax, norms, losses) in float32,
// by its own autocast policy. bf16 on CPU is the fast path on machines with AVX512-BF16/AMX.
import { native } from './native.js';
import { dtypeCode, type DType } from './dtype.js';

export interface AutocastOptions { device?: 'cpu' | 'cuda'; dtype?: DType; enabled?: boolean }

export function autocast<T>(fn: () => T, opts: AutocastOptions = {}): T {
  const device = opts.device ?? 'cpu';
  const dtype = opts.dtype ?? (device === 'cpu' ? 'bfloat16' : 'float16');
  const [prevOn, prevDtype] = native.setAutocast(device, opts.enabled ?? true, dtypeCode(dtype));
  native.autocastNesting(1);
  try {
    const r = fn();
    if (r instanceof Promise) throw new TypeError('autocast(fn): fn must be synchronous (autocast state is per thread, not per async context)');
    return r;
  } finally {
    native.setAutocast(device, prevOn, prevDtype);
    native.autocastNesting(-1);
  }
}
