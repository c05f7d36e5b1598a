// Devices: the CPU, CUDA GPUs (where the user's libtorch is a CUDA build), and `meta`, which
// has shapes and dtypes but no data (for counting the parameters of models too big to allocate).
import { native } from './native.js';

export type Device = 'cpu' | 'meta' | 'cuda' | `cuda:${number}`;

export function parseDevice(d: string): Device {
  if (d === 'cpu' || d === 'meta' || d === 'cuda' || /^cuda:\d+$/.test(d)) return d as Device;
  throw new TypeError(`unknown device '${d}': expected 'cpu', 'meta', 'cuda' or 'cuda:N'`);
}

let cudaDevices: number | undefined;
/** CUDA devices this libtorch sees (fixed for the life of the process, so asked once). */
export function cudaDeviceCount(): number {
  return (cudaDevices ??= native.runtimeInfo().cudaDevices);
}

export function cudaAvailable(): boolean {
  return cudaDeviceCount() > 0;
}
