// Worker-thread entry: decodes and prepares images off the main thread, so a training step (or a
// server's event loop) never waits on libvips or on the float conversion. Messages in: {id, file,
// options} or {id, bytes, label, options} (an upload); out: the prepared
// image (its Float32Array buffer transferred, not copied) or the decode failure's reason.
import { parentPort } from 'node:worker_threads';
import { ImageDecodeError, loadImage, loadImageBytes, type ImageOptions } from './image.js';

/** A file to read, or bytes sent to a server (`label` names them in errors). */
export type ImageJob =
  | { id: number; file: string; options: ImageOptions }
  | { id: number; bytes: Uint8Array; label: string; options: Omit<ImageOptions, 'augment' | 'cache' | 'retried'> };

export type ImageJobResult =
  | { id: number; ok: true; data: Float32Array; shape: [3, number, number]; sourceWidth: number; sourceHeight: number; format: string }
  | { id: number; ok: false; reason: ImageDecodeError['reason']; file: string; detail: string };

const port = parentPort;
if (port !== null) {
  port.on('message', (job: ImageJob) => {
    const work = 'bytes' in job
      ? loadImageBytes(Buffer.from(job.bytes.buffer, job.bytes.byteOffset, job.bytes.byteLength), job.options, job.label)
      : loadImage(job.file, job.options);
    const name = 'bytes' in job ? job.label : job.file;
    work.then(
      (img) => {
        const result: ImageJobResult = { id: job.id, ok: true, ...img };
        port.postMessage(result, [img.data.buffer as ArrayBuffer]);
      },
      (err: unknown) => {
        const e = err instanceof ImageDecodeError ? err : new ImageDecodeError('unreadable image', name, String(err));
        const result: ImageJobResult = { id: job.id, ok: false, reason: e.reason, file: e.file, detail: e.detail };
        port.postMessage(result);
      },
    );
  });
}
