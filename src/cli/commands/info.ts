// `m6 info`: what this machine's engine is: libtorch version, BLAS, threads, devices, bf16 support.
import type { Command } from 'commander';

export function registerInfo(program: Command): void {
  program
    .command('info')
    .description('show the tensor engine: libtorch version, BLAS, threads, devices, bf16 support')
    .option('--json', 'print one JSON object')
    .action(async (opts: { json?: boolean }) => {
      const torch = await import('../../torch/index.js');
      const info = torch.engineInfo();
      const facts = {
        libtorch: info.torchVersion,
        blas: info.openblasConfig ? `${info.openblasConfig} (${info.blasParallel ?? '?'}, ${info.blasThreads ?? '?'} threads)` : (info.blasLibrary ?? 'unknown'),
        blasLibrary: info.blasLibrary ?? null,
        threads: info.threads,
        devices: ['cpu', ...Array.from({ length: info.cudaDevices }, (_, i) => `cuda:${i}`)],
        cudaDevices: info.cudaDevices,
        mkldnn: info.mkldnn,
        cpuFlags: info.cpuFlags,
        bf16MatmulAccelerated: info.bf16Accelerated,
      };
      if (opts.json) { console.log(JSON.stringify(facts, null, 2)); return; }
      // Debian's libtorch calls the system BLAS (fast only when it is OpenBLAS); pip/CUDA builds carry MKL inside libtorch_cpu.
      const builtIn = (info.blasLibrary ?? '').includes('libtorch_cpu');
      const warnBlas = info.openblasConfig ? '' : builtIn ? '  (built into libtorch)' : '  (not OpenBLAS: fp32 matmul may be slow; apt-get install libopenblas0-pthread)';
      console.log([
        `libtorch     ${facts.libtorch}`,
        `BLAS         ${facts.blas}${warnBlas}`,
        `  library    ${facts.blasLibrary ?? 'not found'}`,
        `threads      ${facts.threads}`,
        `devices      ${facts.devices.join(', ')}`,
        `oneDNN       ${facts.mkldnn ? 'yes' : 'no'}`,
        `bf16 matmul  ${facts.bf16MatmulAccelerated ? `accelerated (${info.cpuFlags.amxBf16 ? 'AMX' : 'AVX512-BF16'} via oneDNN)` : 'not accelerated on this CPU'}`,
      ].join('\n'));
    });
}
