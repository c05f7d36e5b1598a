// A pool of worker threads preparing images (see imageWorker.ts). Jobs go to a worker chosen by
// their file; each worker keeps a few jobs going, because sharp's own work is asynchronous.
// Results do not depend on which worker ran them: augmentation seeds travel with the job.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
// Loading sharp on the main thread before any worker does keeps libvips loaded until every worker
// has exited (sharp's documented requirement for worker threads on glibc Linux).
import 'sharp';
import { ImageDecodeError, loadImage, loadImageBytes, type ImageOptions, type PreparedImage } from './image.js';
import type { ImageJob, ImageJobResult } from './imageWorker.js';
import { hashString } from './random.js';

/** Options for an image sent as bytes (nothing to augment or cache). */
export type BytesImageOptions = Omit<ImageOptions, 'augment' | 'cache' | 'retried'>;

export interface ImagePreparer {
  load(file: string, options: ImageOptions): Promise<PreparedImage>;
  /** An image sent as bytes (a server's upload), `loadImageBytes`' way; `label` names it in errors. */
  loadBytes(bytes: Uint8Array, options: BytesImageOptions, label?: string): Promise<PreparedImage>;
  close(): Promise<void>;
}

/** Prepares images on the calling thread: the baseline, and what `workers: 0` means. */
export class MainThreadImagePreparer implements ImagePreparer {
  load(file: string, options: ImageOptions): Promise<PreparedImage> {
    return loadImage(file, options);
  }

  loadBytes(bytes: Uint8Array, options: BytesImageOptions, label = 'upload'): Promise<PreparedImage> {
    return loadImageBytes(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), options, label);
  }

  async close(): Promise<void> {}
}

interface WorkerSlot {
  worker: Worker;
  inFlight: number;
}

/**
 * Image workers when none are asked for: one core's worth fewer than the machine has, at least one,
 * at most four. Why: libtorch's compute threads take every core, and workers that take a core's
 * share from them stall its OpenMP loops. `npm run bench -- train --workers=N` on a 2-core machine,
 * three interleaved runs each: 0.563 s per step with no worker (images prepared on the main thread,
 * 25 ms of waiting), 0.568 s with one (1–2 ms of waiting), 0.580 s with two.
 */
export function defaultWorkerCount(): number {
  return Math.max(1, Math.min(4, availableParallelism() - 1));
}

export class ImageWorkerPool implements ImagePreparer {
  private readonly slots: WorkerSlot[] = [];
  private readonly pending = new Map<number, { resolve: (img: PreparedImage) => void; reject: (err: Error) => void; slot: WorkerSlot }>();
  private nextId = 0;
  private closed = false;

  constructor(readonly size = defaultWorkerCount()) {
    if (!Number.isInteger(size) || size < 1) throw new RangeError(`worker count must be a positive integer, got ${size}`);
    for (let i = 0; i < size; i++) {
      const slot = { inFlight: 0 } as WorkerSlot;
      this.start(slot);
      this.slots.push(slot);
    }
  }

  private start(slot: WorkerSlot): void {
    const worker = new Worker(new URL('./imageWorker.js', import.meta.url));
    slot.worker = worker;
    worker.on('message', (msg: ImageJobResult) => this.settle(msg));
    worker.on('error', (err) => this.failWorker(slot, err));
    worker.unref(); // an idle pool must not keep the process alive
  }

  private settle(msg: ImageJobResult): void {
    const p = this.pending.get(msg.id);
    if (p === undefined) return;
    this.pending.delete(msg.id);
    p.slot.inFlight--;
    if (msg.ok) {
      p.resolve({ data: msg.data, shape: msg.shape, sourceWidth: msg.sourceWidth, sourceHeight: msg.sourceHeight, format: msg.format });
    } else {
      p.reject(new ImageDecodeError(msg.reason, msg.file, msg.detail));
    }
  }

  /** A worker that crashed fails its jobs and is replaced, so a long run keeps its pool size. */
  private failWorker(slot: WorkerSlot, err: Error): void {
    slot.inFlight = 0;
    for (const [id, p] of this.pending) {
      if (p.slot === slot) {
        this.pending.delete(id);
        p.reject(err);
      }
    }
    if (!this.closed) this.start(slot);
  }

  load(file: string, options: ImageOptions): Promise<PreparedImage> {
    // A file always goes to the same worker: each worker caches the sources it decoded
    // (decodedImageCache.ts), so a file is held once, and found again next epoch.
    return this.send(this.slots[hashString(file) % this.slots.length]!, (id) => ({ id, file, options }));
  }

  /** Bytes go to the least busy worker (nothing of theirs is cached); they are copied, not transferred (a Buffer may share its memory). */
  loadBytes(bytes: Uint8Array, options: BytesImageOptions, label = 'upload'): Promise<PreparedImage> {
    const slot = this.slots.reduce((a, b) => (b.inFlight < a.inFlight ? b : a));
    return this.send(slot, (id) => ({ id, bytes, label, options }));
  }

  private send(slot: WorkerSlot, job: (id: number) => ImageJob): Promise<PreparedImage> {
    if (this.closed) return Promise.reject(new Error('image worker pool is closed'));
    const id = this.nextId++;
    slot.inFlight++;
    if (slot.inFlight === 1) slot.worker.ref();
    return new Promise<PreparedImage>((resolve, reject) => {
      this.pending.set(id, {
        resolve: (img) => {
          if (slot.inFlight === 0) slot.worker.unref();
          resolve(img);
        },
        reject: (err) => {
          if (slot.inFlight === 0) slot.worker.unref();
          reject(err);
        },
        slot,
      });
      slot.worker.postMessage(job(id));
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // An idle worker is unref'd; awaiting its termination with nothing else keeping the event loop
    // alive lets Node exit mid-await (exit code 13, "unsettled top-level await"). Ref them first.
    for (const s of this.slots) s.worker.ref();
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
    for (const p of this.pending.values()) p.reject(new Error('image worker pool closed'));
    this.pending.clear();
  }
}
