// `m6 plan --preset P --gpus N [--gpu a100|h100|v100|h200] [--tokens T] [--json]`: a capacity plan
// for training a configuration at scale — memory per device under each way of spreading it, whether
// it fits the GPU (and, offloaded, the host), step time at a stated MFU with the communication that
// does not hide behind compute, and days to train T tokens. Nothing is allocated (meta device).
import type { Command } from 'commander';
import { asUsageError, UsageError } from '../errors.js';
import { countFlag, numberFlag } from '../flags.js';
import type { GpuSpec } from '../../distributed/gpus.js';
import type { PlanOptions, StrategyPlan, TrainingPlan } from '../../distributed/plan.js';

interface PlanFlags {
  preset: string; gpus: string; gpu: string; tokens?: string; experts?: string; shareLayers?: boolean;
  microBatch: string; gradAccum: string; seqLen?: string; mfu: string; checkpointing: string;
  gpusPerNode: string; gpuMemory?: string; hostMemory?: string; intraNodeBw?: string; interNodeBw?: string; pcieBw?: string;
  json?: boolean;
}

const GiB = 2 ** 30;

function human(n: number): string {
  for (const [v, s] of [[1e12, 'T'], [1e9, 'B'], [1e6, 'M'], [1e3, 'K']] as const) if (Math.abs(n) >= v) return `${(n / v).toFixed(2)}${s}`;
  return n.toFixed(0);
}
function gib(n: number): string {
  if (n === 0) return '0';
  if (n >= 1024 * GiB) return `${(n / GiB / 1024).toFixed(1)} TiB`;
  if (n < GiB / 10) return `${(n / 2 ** 20).toFixed(n < 10 * 2 ** 20 ? 1 : 0)} MiB`;
  return n >= 100 * GiB ? `${(n / GiB).toFixed(0)} GiB` : `${(n / GiB).toFixed(1)} GiB`;
}
function gb(n: number): string {
  if (n === 0) return '0';
  if (n < 1e8) return `${(n / 1e6).toFixed(n < 1e7 ? 2 : 0)} MB`;
  return n >= 1e11 ? `${(n / 1e9).toFixed(0)} GB` : `${(n / 1e9).toFixed(2)} GB`;
}
function seconds(s: number): string { return s < 1 ? `${(s * 1e3).toPrecision(3)} ms` : s >= 100 ? `${s.toFixed(0)} s` : `${s.toFixed(2)} s`; }
function days(d: number): string { return d < 1 ? d.toPrecision(2) : d.toFixed(d < 10 ? 1 : 0); }

/** The GPU with any flag's override of its memory, links or host memory. */
async function gpuFrom(flags: PlanFlags): Promise<GpuSpec> {
  const { gpuSpec } = await import('../../distributed/gpus.js');
  const spec: GpuSpec = { ...gpuSpec(flags.gpu) };
  const set = (flag: string, value: string | undefined, key: 'memoryGiB' | 'hostMemoryGiBPerNode' | 'intraNodeGBps' | 'interNodeGBps' | 'pcieGBps') => {
    if (value !== undefined) spec[key] = numberFlag(flag, value, { positive: true });
  };
  set('--gpu-memory', flags.gpuMemory, 'memoryGiB');
  set('--host-memory', flags.hostMemory, 'hostMemoryGiBPerNode');
  set('--intra-node-bw', flags.intraNodeBw, 'intraNodeGBps');
  set('--inter-node-bw', flags.interNodeBw, 'interNodeGBps');
  set('--pcie-bw', flags.pcieBw, 'pcieGBps');
  return spec;
}

function optionsFrom(flags: PlanFlags, gpu: GpuSpec): PlanOptions {
  if (!['auto', 'on', 'off'].includes(flags.checkpointing)) throw new UsageError(`--checkpointing must be one of auto, on, off, got '${flags.checkpointing}'`);
  const int = (flag: string, value: string) => numberFlag(flag, value, { integer: true, min: 1 });
  return {
    gpus: int('--gpus', flags.gpus), gpu, gpusPerNode: int('--gpus-per-node', flags.gpusPerNode),
    microBatch: int('--micro-batch', flags.microBatch), gradAccum: int('--grad-accum', flags.gradAccum),
    ...(flags.seqLen !== undefined ? { seqLen: int('--seq-len', flags.seqLen) } : {}),
    mfu: numberFlag('--mfu', flags.mfu, { positive: true }),
    ...(flags.tokens !== undefined ? { tokens: countFlag('--tokens', flags.tokens) } : {}),
    checkpointing: flags.checkpointing as PlanOptions['checkpointing'], runtimeGiB: 1,
  };
}

async function configFrom(flags: PlanFlags) {
  const { PRESETS, preset } = await import('../../model/config.js');
  if (!PRESETS[flags.preset]) throw new UsageError(`--preset: unknown preset '${flags.preset}': expected one of ${Object.keys(PRESETS).join(', ')}`);
  const experts = flags.experts === undefined ? undefined : numberFlag('--experts', flags.experts, { integer: true, min: 0 });
  return preset(flags.preset, { ...(experts !== undefined ? { experts } : {}), ...(flags.shareLayers ? { shareLayers: true } : {}) });
}

function header(p: TrainingPlan): string[] {
  const m = p.model, h = p.hardware, g = h.gpu;
  return [
    `${m.name}${m.shareLayers ? ' (layers shared: the pseudo model of Pseudo-to-Real)' : ''}: ${human(m.totalParams)} parameters, ${human(m.activeParams)} active per token` +
      (m.moeLayers ? ` (${m.experts} experts in each of ${m.moeLayers} MoE layers: ${human(m.expertParams)})` : ''),
    `${h.gpus} × ${g.name} (${g.memoryGiB} GiB, ${g.precision} ${g.peakTflops} TFLOP/s, MFU ${p.mfu}), ${h.nodes} node${h.nodes > 1 ? 's' : ''} of ${h.gpusPerNode}; ` +
      `NVLink ${g.intraNodeGBps} GB/s, inter-node ${g.interNodeGBps} GB/s, PCIe ${g.pcieGBps} GB/s per GPU; host ${g.hostMemoryGiBPerNode} GiB per node`,
    `batch: ${p.batch.microBatch} rows × ${p.batch.seqLen} positions × ${h.gpus} devices × ${p.batch.gradAccum} accumulation = ${human(p.batch.tokensPerStep)} tokens per step; ` +
      `${human(p.flopsPerToken)} FLOPs per token trained`,
    `activations per device: ${gib(p.activations.full)}, ${gib(p.activations.checkpointed)} checkpointed; ` +
      `${human(p.tokens)} tokens to train${p.tokensDefaulted ? ' (default: 20 per active parameter; set --tokens)' : ''}`,
  ];
}

const COLUMNS = ['strategy', 'weights', 'grads', 'optimizer', 'gathered', 'activations', 'total/GPU', 'host/node', 'fits', 'step', 'dp comm', 'a2a comm', 'days'];

function row(s: StrategyPlan): string[] {
  const m = s.memory;
  const fits = s.fits ? 'yes' : s.limit === 'host-memory' ? 'no: host' : 'no';
  return [
    s.strategy, gib(m.params), gib(m.grads), gib(m.optimizer), gib(m.gathered), `${gib(m.activations)}${s.checkpointing ? ' ckpt' : ''}`,
    gib(m.total), s.hostBytesPerNode ? gib(s.hostBytesPerNode) : '—', fits,
    s.fits ? seconds(s.time.step) : '—', gb(s.communication.dataParallel), gb(s.communication.allToAll), s.fits ? days(s.days) : '—',
  ];
}

function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd());
}

function printPlan(p: TrainingPlan): void {
  const fitting = p.strategies.filter((s) => s.fits);
  const best = fitting.reduce<StrategyPlan | undefined>((b, s) => (b && b.days <= s.days ? b : s), undefined);
  console.log([
    ...header(p), '',
    ...table([COLUMNS, ...p.strategies.map(row)]), '',
    best ? `fastest that fits: ${best.strategy} (${best.description}): ${seconds(best.time.step)} per step, ${human(best.tokensPerSecond)} tokens/s, ${days(best.days)} days`
      : `nothing fits ${p.hardware.gpus} × ${p.hardware.gpu.name}: add devices, shrink --micro-batch, or give more --host-memory`,
    'memory per device; comm = bytes each device sends per step (dp: gradient all-reduce / ZeRO collectives; a2a: MoE all-to-alls); ckpt = activations recomputed',
  ].join('\n'));
}

export function registerPlan(program: Command): void {
  program
    .command('plan')
    .description('plan a large training run: memory per device, fit, step time and days under DDP, ZeRO-1/2/3, expert parallel and CPU offload')
    .requiredOption('--preset <name>', 'm6-nano | m6-small | m6-base | m6-10b | m6-100b | m6-1t | m6-10t')
    .requiredOption('--gpus <n>', 'devices in the run')
    .option('--gpu <name>', 'v100-16 | v100-32 (v100) | a100-40 | a100-80 (a100) | h100 | h200', 'a100')
    .option('--tokens <count>', 'tokens (positions) to train on, e.g. 300B (default: 20 per active parameter)')
    .option('--experts <n>', 'override the number of experts per MoE layer')
    .option('--share-layers', 'one block shared by every layer (the pseudo stage of Pseudo-to-Real)')
    .option('--micro-batch <rows>', 'rows per device per micro-batch', '4')
    .option('--grad-accum <n>', 'micro-batches per optimizer step', '1')
    .option('--seq-len <n>', 'positions per row (default: image patches + maxTextLen)')
    .option('--mfu <f>', 'model FLOPs utilisation the step time assumes', '0.4')
    .option('--checkpointing <mode>', 'activation checkpointing: auto (only where needed to fit) | on | off', 'auto')
    .option('--gpus-per-node <n>', 'GPUs per node (NVLink within, the network across)', '8')
    .option('--gpu-memory <GiB>', 'override the GPU memory')
    .option('--host-memory <GiB>', 'override host memory per node (for CPU offload)')
    .option('--intra-node-bw <GB/s>', 'override NVLink bandwidth per GPU')
    .option('--inter-node-bw <GB/s>', 'override inter-node bandwidth per GPU')
    .option('--pcie-bw <GB/s>', 'override host↔device bandwidth per GPU')
    .option('--json', 'print the plan as one JSON object')
    .action(async (flags: PlanFlags) => {
      const { planTraining } = await import('../../distributed/plan.js');
      let plan: TrainingPlan;
      try {
        plan = planTraining(await configFrom(flags), optionsFrom(flags, await gpuFrom(flags)));
      } catch (e) { throw asUsageError(e); }
      if (flags.json) console.log(JSON.stringify(plan, null, 2));
      else printPlan(plan);
    });
}
