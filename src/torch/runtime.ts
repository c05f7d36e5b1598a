// Process-wide settings and facts: threads, seeds, and what this machine's libtorch offers.
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { native, type RuntimeInfo } from './native.js';

/** Threads for libtorch's intra-op pool and OpenBLAS. libtorch starts with 1 in Node; m6 sets the core count at load. */
export function setNumThreads(n: number): void { native.setNumThreads(n); }
export function getNumThreads(): number { return native.getNumThreads(); }

/** Seeds every generator (CPU and CUDA): same seed, same numbers, run to run. */
export function manualSeed(seed: number): void {
  if (!Number.isInteger(seed) || seed < 0) throw new RangeError(`manualSeed: expected a non-negative integer, got ${seed}`);
  native.manualSeed(seed);
}

/**
 * Keeps freed CPU blocks up to `bytes` in the process heap instead of returning them to the OS, so a
 * training loop re-uses its activation and gradient memory instead of page-faulting it in every step
 * (glibc's default gives blocks over 32 MiB back at once). RSS then stays at its peak. Linux/glibc only.
 * The environment equivalent, for any process (PyTorch included): MALLOC_MMAP_THRESHOLD_=bytes MALLOC_TRIM_THRESHOLD_=bytes.
 */
export function keepLargeAllocations(bytes = 2 ** 31 - 1): boolean {
  return native.keepLargeAllocations(bytes);
}

export interface EngineInfo extends RuntimeInfo {
  /** The CPU's model name (/proc/cpuinfo), or 'unknown'. */
  cpuModel: string;
  cpuFlags: { avx2: boolean; avx512f: boolean; avx512bf16: boolean; amxBf16: boolean };
  /** Whether bf16 matmul has hardware support here (oneDNN with AVX512-BF16 or AMX). */
  bf16Accelerated: boolean;
}

export function engineInfo(): EngineInfo {
  const info = native.runtimeInfo();
  let flags = '', cpuModel = 'unknown';
  try {
    const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
    flags = cpuinfo.match(/^flags\s*:(.*)$/m)?.[1] ?? '';
    cpuModel = cpuinfo.match(/^model name\s*:\s*(.*)$/m)?.[1]?.trim() ?? cpuModel;
  } catch { /* not Linux */ }
  const has = (f: string) => new RegExp(`\\b${f}\\b`).test(flags);
  const cpuFlags = { avx2: has('avx2'), avx512f: has('avx512f'), avx512bf16: has('avx512_bf16'), amxBf16: has('amx_bf16') };
  return { ...info, cpuModel, cpuFlags, bf16Accelerated: info.mkldnn && (cpuFlags.avx512bf16 || cpuFlags.amxBf16) };
}

let initialized = false;
/** Called once when m6 loads: use every core (libtorch defaults to one thread in an embedding process). */
export function initRuntime(): void {
  if (initialized) return;
  initialized = true;
  const env = Number(process.env.M6_NUM_THREADS ?? process.env.OMP_NUM_THREADS);
  native.setNumThreads(Number.isInteger(env) && env > 0 ? env : availableParallelism());
}
