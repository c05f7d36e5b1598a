// Does bf16 pay off on this CPU? The flags say where hardware exists (AVX512-BF16, AMX), but not what
// oneDNN makes of it, nor what an unknown CPU does: a short probe times the same matmul in fp32 and
// in bf16, at the sizes of m6-nano's feed-forward (a batch of 16 × 64 positions through a
// 256 → 1024 projection), and the defaults (the demo's dtype, the benches') follow what it measured.
// On an AVX2-only EPYC bf16 ran at ~3 GFLOP/s against ~137 fp32; on a Xeon with AMX ~4× fp32.
import { noGrad } from './autograd.js';
import { engineInfo } from './runtime.js';
import { scope } from './scope.js';
import { randn } from './tensor.js';

export interface Bf16Probe {
  /** GFLOP/s of the probe matmul on fp32 and on bf16 tensors. */
  fp32Gflops: number;
  bf16Gflops: number;
  /** bf16 ÷ fp32 speed. */
  speedup: number;
  /** Whether bf16 is the faster choice here (speed-up ≥ 1.2: below that the rounding is not worth it). */
  pays: boolean;
  /** The CPU flags' verdict, beside the measurement. */
  flagsSayAccelerated: boolean;
  /** Why bf16 could not run at all, where it could not (its speed is then 0 and it does not pay). */
  bf16Error?: string;
  seconds: number;
}

let cached: Bf16Probe | undefined;

/** Times both dtypes: ~0.2 s where bf16 is fast, up to ~1 s where it is emulated (a warm-up and three repetitions at ~3 GFLOP/s). Cached per process. */
export function probeBf16Matmul(): Bf16Probe {
  if (cached !== undefined) return cached;
  const started = performance.now();
  const [m, k, n] = [1024, 256, 1024];
  const flops = 2 * m * k * n;
  // bf16 times the kernel on bf16 tensors: in a model under autocast the casts of weights and inputs
  // are amortised (activations stay bf16), so the kernel's speed is what decides.
  const time = (bf16: boolean): number => noGrad(() => scope(() => {
    const a = randn([m, k]).to(bf16 ? 'bfloat16' : 'float32'), b = randn([k, n]).to(bf16 ? 'bfloat16' : 'float32');
    const run = () => a.matmul(b).dispose();
    run(); run();   // warm-up: oneDNN builds its kernel on the first calls
    let reps = 0;
    const t0 = performance.now();
    // At least 3 repetitions, and up to ~100 ms of them.
    while (reps < 3 || (performance.now() - t0 < 100 && reps < 200)) { run(); reps++; }
    return (reps * flops) / ((performance.now() - t0) / 1000) / 1e9;
  }));
  const fp32Gflops = time(false);
  // A CPU whose flags promise bf16 can still refuse it: oneDNN held below its ISA (ONEDNN_MAX_CPU_ISA=AVX2
  // on an AVX512-BF16 EPYC) finds no bf16 kernel and throws. That is a measurement too: bf16 does not run here.
  let bf16Gflops = 0, bf16Error: string | undefined;
  try { bf16Gflops = time(true); } catch (e) { bf16Error = (e instanceof Error ? e.message : String(e)).split('\n')[0]; }
  const speedup = bf16Gflops / fp32Gflops;
  cached = {
    fp32Gflops, bf16Gflops, speedup, pays: speedup >= 1.2, flagsSayAccelerated: engineInfo().bf16Accelerated,
    ...(bf16Error !== undefined ? { bf16Error } : {}), seconds: (performance.now() - started) / 1000,
  };
  return cached;
}
