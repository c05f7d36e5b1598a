// The compiled addon (native/), loaded once. Everything above this file speaks TypeScript types;
// only src/torch/ touches these raw integer handles.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

/** A tensor handle: an index into the addon's tensor table (0 = none). */
export type Handle = number;
/** An operator handle from `opHandle`. */
export type OpId = number;

export interface OpArgInfo { name: string; type: string; optional: boolean; hasDefault: boolean; kwOnly: boolean }
export interface OpInfo { id: OpId; name: string; args: OpArgInfo[]; returns: string[] }

export interface RuntimeInfo {
  torchVersion: string;
  threads: number;
  cudaAvailable: boolean;
  cudaDevices: number;
  mkldnn: boolean;
  config: string;
  parallelInfo: string;
  blasLibrary?: string;
  openblasConfig?: string;
  blasThreads?: number;
  blasParallel?: string;
}

/** Values the addon converts by the operator's schema. */
export type NativeArg = Handle | number | boolean | string | bigint | null | undefined | NativeArg[];
export type NativeResult = Handle | number | boolean | string | null | undefined | NativeResult[];

export interface NativeAddon {
  // tensor table
  free(id: Handle): void;
  freeMany(ids: Uint32Array): void;
  reportToGc(id: Handle): void;
  liveCount(): number;
  liveBytes(): number;
  shape(id: Handle): number[];
  dtype(id: Handle): number;
  device(id: Handle): string;
  describe(id: Handle): string;
  isContiguous(id: Handle): boolean;
  fromBytes(bytes: ArrayBufferView | ArrayBuffer, shape: number[], dtype: number): Handle;
  toBytes(id: Handle): ArrayBuffer;
  item(id: Handle): number | boolean;
  // operators
  opHandle(name: string, overload: string): OpInfo;
  hasOp(name: string, overload: string): boolean;
  call(op: OpId, ...args: NativeArg[]): NativeResult;
  callAsync(op: OpId, ...args: NativeArg[]): Promise<NativeResult>;
  // autograd and process state
  gradEnabled(): boolean;
  setGradEnabled(on: boolean): void;
  requiresGrad(id: Handle): boolean;
  setRequiresGrad(id: Handle, on: boolean): void;
  isLeaf(id: Handle): boolean;
  retainGrad(id: Handle): void;
  grad(id: Handle): Handle | undefined;
  setGrad(id: Handle, grad: Handle | null): void;
  backward(outputs: Handle[], grads: (Handle | null)[], retainGraph: boolean | undefined, createGraph: boolean): void;
  setAutocast(deviceType: 'cpu' | 'cuda', enabled: boolean, dtype: number): [boolean, number];
  autocastNesting(delta: 1 | -1): number;
  manualSeed(seed: number): void;
  setNumThreads(n: number): void;
  getNumThreads(): number;
  keepLargeAllocations(bytes: number): boolean;
  runtimeInfo(): RuntimeInfo;
  // the op profiler (native/src/profiler.cc)
  profilerStart(shapes: boolean): void;
  profilerStop(): { key: string; calls: number; totalUs: number; selfUs: number; topLevelUs: number }[];
  torchVersion(): string;
  // c10d process groups (src/distributed/): see native/src/distributed.cc
  distBackends(): { gloo: boolean; nccl: boolean; reason?: string };
  distInit(backend: string, rank: number, worldSize: number, masterAddr: string, masterPort: number, timeoutMs: number): [number, Promise<void>];
  distAllReduce(group: number, t: Handle, op: string): Promise<void>;
  distBroadcast(group: number, t: Handle, root: number): Promise<void>;
  distAllGather(group: number, t: Handle): Promise<Handle[]>;
  distAllToAll(group: number, t: Handle, inputSplits: number[] | null, outputSplits: number[] | null): Promise<{ output: Handle; outputSplits: number[] }>;
  distAllToAllInGraph(group: number, t: Handle, inputSplits: number[], outputSplits: number[]): Handle;
  distBarrier(group: number): Promise<void>;
  distDestroy(group: number): Promise<void>;
  /** The overlapping gradient reducer (Gloo): hooks on the parameters' gradient accumulators issue bucket all-reduces during backward. */
  distReducerCreate(group: number, params: Handle[], flats: Handle[], bucketParams: number[][], bucketOffsets: number[][]): number;
  distReducerArm(reducer: number, loss?: Handle): void;
  /** Resolves with how many buckets backward's hooks issued, once every bucket is averaged. */
  distReducerFlush(reducer: number): Promise<number>;
  distReducerDestroy(reducer: number): void;
  // storage
  mapTensors(path: string, entries: [number, number[], number, number][], dataOffset: number): Handle[];
  dataPtr(id: Handle): number;
}

function locate(): string {
  const root = join(dirname(fileURLToPath(import.meta.url)), '../../..');
  const candidates = [
    process.env.M6_NATIVE,
    join(root, 'native/build/Release/m6_native.node'),
    join(root, 'native/build/Debug/m6_native.node'),
  ].filter((p): p is string => !!p);
  const found = candidates.find((p) => existsSync(p));
  if (!found) {
    throw new Error(`m6: the native addon is not built (looked in ${candidates.join(', ')}). `
      + 'Run `npm run build:native` (it needs libtorch: `apt-get install libtorch-dev libopenblas0-pthread` on Debian/Ubuntu).');
  }
  return found;
}

export const native: NativeAddon = createRequire(import.meta.url)(locate()) as NativeAddon;
