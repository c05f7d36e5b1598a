// Worker-thread entry: decodes and prepares images off the main thread, so a training step never
// waits on libvips or on the float conversion. Messages in: {id, file, options}; out: the prepared
// image (its Float32Array buffer transferred, not copied) or the decode failure's reason.
import { parentPort } from 'node:worker_threads';
import { ImageDecodeError, loadImage, type ImageOptions } from './image.js';

export interface ImageJob {
  id: number;
  file: string;
  options: ImageOptions;
}

export type ImageJobResult =
  | { id: number; ok: true; data: Float32Array; shape: [3, number, number]; sourceWidth: number; sourceHeight: number; format: string }
  | { id: number; ok: false; reason: ImageDecodeError['reason']; file: string; detail: string };

const port = parentPort;
if (port !== null) {
  port.on('message', (job: ImageJob) => {
    loadImage(job.file, job.options).then(
      (img) => {
        const result: ImageJobResult = { id: job.id, ok: true, ...img };
        port.postMessage(result, [img.data.buffer as ArrayBuffer]);
      },
      (err: unknown) => {
        const e = err instanceof ImageDecodeError ? err : new ImageDecodeError('unreadable image', job.file, String(err));
        const result: ImageJobResult = { id: job.id, ok: false, reason: e.reason, file: e.file, detail: e.detail };
        port.postMessage(result);
      },
    );
  });
}
