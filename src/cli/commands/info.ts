// `m6 info`: what this machine's engine is: libtorch version, BLAS, threads, devices, bf16 support.
import type { Command } from 'commander';

const round = (x: number) => Math.round(x * 10) / 10;

export function registerInfo(program: Command): void {
  program
    .command('info')
    .description('show the tensor engine: libtorch version, BLAS, threads, devices, bf16 support')
    .option('--json', 'print one JSON object')
    .action(async (opts: { json?: boolean }) => {
      const torch = await import('../../torch/index.js');
      const info = torch.engineInfo();
      const probe = torch.probeBf16Matmul();
      const facts = {
        libtorch: info.torchVersion,
        blas: info.openblasConfig ? `${info.openblasConfig} (${info.blasParallel ?? '?'}, ${info.blasThreads ?? '?'} threads)` : (info.blasLibrary ?? 'unknown'),
        blasLibrary: info.blasLibrary ?? null,
        threads: info.threads,
        devices: ['cpu', ...Array.from({ length: info.cudaDevices }, (_, i) => `cuda:${i}`)],
        cudaDevices: info.cudaDevices,
        mkldnn: info.mkldnn,
        cpu: info.cpuModel,
        cpuFlags: info.cpuFlags,
        bf16MatmulAccelerated: info.bf16Accelerated,
        bf16Probe: { fp32Gflops: round(probe.fp32Gflops), bf16Gflops: round(probe.bf16Gflops), speedup: round(probe.speedup), pays: probe.pays, ...(probe.bf16Error !== undefined ? { bf16Error: probe.bf16Error } : {}) },
      };
      if (opts.json) { console.log(JSON.stringify(facts, null, 2)); return; }
      // Debian's libtorch calls the system BLAS (fast only when it is OpenBLAS); pip/CUDA builds carry MKL inside libtorch_cpu.
      const builtIn = (info.blasLibrary ?? '').includes('libtorch_cpu');
      const warnBlas = info.openblasConfig
        ? info.blasParallel === 'pthreads' && info.threads > 1 ? '  (its own threads beside libtorch\'s OpenMP ones: fp32 matmul can run ~2× slower; apt-get install libopenblas0-openmp, then node scripts/build-native.mjs)' : ''
        : builtIn ? '  (built into libtorch)' : '  (not OpenBLAS: fp32 matmul may be slow; apt-get install libopenblas0-pthread)';
      const bf16Unit = info.cpuFlags.amxBf16 ? 'AMX' : 'AVX512-BF16';
      console.log([
        `CPU          ${info.cpuModel} (${Object.entries({ AVX2: info.cpuFlags.avx2, 'AVX-512': info.cpuFlags.avx512f, 'AVX512-BF16': info.cpuFlags.avx512bf16, 'AMX-BF16': info.cpuFlags.amxBf16 }).filter(([, on]) => on).map(([k]) => k).join(', ') || 'no AVX2'})`,
        `libtorch     ${facts.libtorch}`,
        `BLAS         ${facts.blas}${warnBlas}`,
        `  library    ${facts.blasLibrary ?? 'not found'}`,
        `threads      ${facts.threads}`,
        `devices      ${facts.devices.join(', ')}`,
        `oneDNN       ${facts.mkldnn ? 'yes' : 'no'}`,
        `bf16 matmul  ${!facts.bf16MatmulAccelerated ? 'not accelerated on this CPU' : probe.bf16Error !== undefined ? `the CPU has ${bf16Unit}, but oneDNN runs no bf16 kernel here (ONEDNN_MAX_CPU_ISA?)` : `accelerated (${bf16Unit} via oneDNN)`}`,
        probe.bf16Error !== undefined
          ? `  measured   ${round(probe.fp32Gflops)} GFLOP/s fp32; bf16 does not run here (${probe.bf16Error}): m6 trains in fp32 by default`
          : `  measured   ${round(probe.fp32Gflops)} GFLOP/s fp32, ${round(probe.bf16Gflops)} bf16 (×${probe.speedup.toFixed(2)}): m6 trains in ${probe.pays ? 'bf16 autocast' : 'fp32'} by default`,
      ].join('\n'));
    });
}
