// `m6 inspect --preset NAME [--experts E] [--json]`: parameters, FLOPs and memory of a configuration,
// computed on the meta device (nothing allocated), so the paper's 10-trillion-parameter model is instant.
import type { Command } from 'commander';
import { UsageError } from '../errors.js';

function human(n: number, unit = ''): string {
  const units: [number, string][] = [[1e12, 'T'], [1e9, 'B'], [1e6, 'M'], [1e3, 'K']];
  for (const [v, s] of units) if (Math.abs(n) >= v) return `${(n / v).toFixed(2)}${s}${unit}`;
  return `${n}${unit}`;
}
function bytes(n: number): string {
  const units: [number, string][] = [[2 ** 40, 'TiB'], [2 ** 30, 'GiB'], [2 ** 20, 'MiB'], [2 ** 10, 'KiB']];
  for (const [v, s] of units) if (n >= v) return `${(n / v).toFixed(1)} ${s}`;
  return `${n} B`;
}

export function registerInspect(program: Command): void {
  program
    .command('inspect')
    .description('count parameters, FLOPs and memory of a model configuration (built on the meta device: instant at any scale)')
    .option('--preset <name>', 'm6-nano | m6-small | m6-base | m6-10b | m6-100b | m6-1t | m6-10t', 'm6-nano')
    .option('--experts <n>', 'override the number of experts (0 = dense)')
    .option('--json', 'print one JSON object')
    .action(async (opts: { preset: string; experts?: string; json?: boolean }) => {
      const { PRESETS, preset, modelStats } = await import('../../model/index.js');
      if (!PRESETS[opts.preset]) throw new UsageError(`unknown preset '${opts.preset}': expected one of ${Object.keys(PRESETS).join(', ')}`);
      const overrides: { experts?: number } = {};
      if (opts.experts !== undefined) {
        const e = Number(opts.experts);
        if (!Number.isInteger(e) || e < 0) throw new UsageError(`--experts must be a non-negative integer, got '${opts.experts}'`);
        overrides.experts = e;
      }
      let cfg;
      try { cfg = preset(opts.preset, overrides); } catch (e) { throw new UsageError((e as Error).message); }
      const s = modelStats(cfg);
      if (opts.json) { console.log(JSON.stringify({ ...s, config: cfg }, null, 2)); return; }
      console.log([
        `${s.name}: ${cfg.layers} layers, d=${cfg.dim}, ${cfg.heads} heads, FFN ${cfg.ffnDim}` +
          (cfg.experts ? `, ${cfg.experts} experts in ${s.moeLayers} MoE layers (${cfg.expertGroups > 1 ? `${cfg.expertGroups} prototype groups, top-1 each` : `top-${cfg.topK}`})` : ', dense'),
        `parameters        ${human(s.totalParams)} total, ${human(s.activeParams)} active per token` + (s.expertParams ? ` (experts: ${human(s.expertParams)})` : ''),
        `FLOPs per token   ${human(s.flopsPerTokenForward)} forward, ${human(s.flopsPerTokenTraining)} training (context ${s.context})`,
        `weights           ${bytes(s.bytes.weights.fp32)} fp32, ${bytes(s.bytes.weights.bf16)} bf16`,
        `gradients         ${bytes(s.bytes.grads.fp32)} fp32, ${bytes(s.bytes.grads.bf16)} bf16`,
        `AdamW states      ${bytes(s.bytes.adamw.fp32)} fp32, ${bytes(s.bytes.adamw.bf16)} bf16`,
      ].join('\n'));
    });
}
