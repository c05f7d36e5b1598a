// The accelerators `m6 plan` knows: memory, dense tensor-core peak, and the links of the reference
// node each ships in (NVIDIA's DGX of its generation: 8 GPUs). Every figure is a default a flag
// overrides; the bandwidths are per GPU and per direction, the units GB/s (1e9 bytes).
import { InputError } from '../torch/inputError.js';

export interface GpuSpec {
  name: string;
  /** Device memory, GiB, as the product is named (V100-32GB: 32). */
  memoryGiB: number;
  /** Dense 16-bit tensor-core peak, TFLOP/s (V100 has no bf16: fp16 with loss scaling, the same bytes). */
  peakTflops: number;
  precision: 'bf16' | 'fp16';
  /** NVLink within a node. */
  intraNodeGBps: number;
  /** InfiniBand across nodes: the node's NICs shared by its GPUs. */
  interNodeGBps: number;
  /** Host ↔ device (PCIe), what CPU offload moves over. */
  pcieGBps: number;
  /** Host memory of the reference node, GiB (what offloaded state has to fit in). */
  hostMemoryGiBPerNode: number;
}

// DGX-1V: NVLink 2 (6 links × 25 GB/s), 4 × 100 Gb/s EDR for 8 GPUs, PCIe 3 x16, 512 GiB.
const V100 = { peakTflops: 125, precision: 'fp16', intraNodeGBps: 150, interNodeGBps: 6.25, pcieGBps: 12, hostMemoryGiBPerNode: 512 } as const;
// DGX A100: NVLink 3 (600 GB/s both ways), 8 × 200 Gb/s HDR, PCIe 4, 1 TiB.
const A100 = { peakTflops: 312, precision: 'bf16', intraNodeGBps: 300, interNodeGBps: 25, pcieGBps: 25, hostMemoryGiBPerNode: 1024 } as const;
// DGX H100 / H200: NVLink 4 (900 GB/s both ways), 8 × 400 Gb/s NDR, PCIe 5, 2 TiB; SXM peaks.
const H100 = { peakTflops: 989, precision: 'bf16', intraNodeGBps: 450, interNodeGBps: 50, pcieGBps: 50, hostMemoryGiBPerNode: 2048 } as const;

export const GPUS: Readonly<Record<string, GpuSpec>> = Object.freeze({
  'v100-16': { name: 'V100-16GB', memoryGiB: 16, ...V100 },
  'v100-32': { name: 'V100-32GB', memoryGiB: 32, ...V100 },
  'a100-40': { name: 'A100-40GB', memoryGiB: 40, ...A100 },
  'a100-80': { name: 'A100-80GB', memoryGiB: 80, ...A100 },
  'h100': { name: 'H100-SXM-80GB', memoryGiB: 80, ...H100 },
  'h200': { name: 'H200-141GB', memoryGiB: 141, ...H100 },
});

/** Short names for the usual card of a generation. */
const ALIASES: Readonly<Record<string, string>> = { v100: 'v100-32', a100: 'a100-80', 'h100-80': 'h100', 'h200-141': 'h200' };

/** The spec of `name` (case-insensitive; `v100` is the 32 GB card, `a100` the 80 GB one). */
export function gpuSpec(name: string): GpuSpec {
  const key = name.toLowerCase();
  const spec = GPUS[ALIASES[key] ?? key];
  if (!spec) throw new InputError(`--gpu: unknown GPU '${name}': expected one of ${[...Object.keys(GPUS), ...Object.keys(ALIASES)].join(', ')}`);
  return spec;
}
