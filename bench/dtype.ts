// Which dtype a bench trains in: bf16 autocast where this CPU runs bf16 matmuls faster than fp32
// (the probe `m6 info` shows), else fp32; `--bf16` / `--fp32` override. Where bf16 is emulated (an
// AVX2-only CPU: ~3 GFLOP/s against ~137 fp32) one bf16 step of the engine bench's transformer took
// 85 s, and a bench that ran it by default took 40 minutes to say what the probe says in a second.
import * as torch from '../src/torch/index.js';

export interface Bf16Choice { bf16: boolean; /** why, for the bench's header line */ why: string }

/** The flags first, else the probe's verdict (`probe` is a parameter so the decision can be tested without the CPU it describes). */
export function chooseBf16(argv: readonly string[], probe: () => torch.Bf16Probe = torch.probeBf16Matmul): Bf16Choice {
  const wantBf16 = argv.includes('--bf16'), wantFp32 = argv.includes('--fp32');
  if (wantBf16 && wantFp32) throw new RangeError('give --fp32 or --bf16, not both');
  if (wantBf16) return { bf16: true, why: '--bf16' };
  if (wantFp32) return { bf16: false, why: '--fp32' };
  const p = probe();
  const measured = `bf16 matmul ${p.bf16Gflops.toFixed(0)} GFLOP/s vs fp32 ${p.fp32Gflops.toFixed(0)} (${p.speedup.toFixed(2)}×)`;
  return p.pays ? { bf16: true, why: `${measured}: bf16 is accelerated here` } : { bf16: false, why: `${measured}: bf16 is not accelerated here (--bf16 runs it anyway)` };
}
