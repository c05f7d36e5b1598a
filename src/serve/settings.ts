// The server's knobs, with their defaults in one place (`m6 serve` flags set some of them).
export interface BatchSettings {
  /** Most requests of one task in one batch. */
  maxBatchSize: number;
  /** How long a batch's first request waits for others (ms). */
  maxWaitMs: number;
  /** Most requests waiting per task; past it, 429. */
  maxQueue: number;
}

export interface Limits {
  /** Largest request body (JSON or multipart), bytes. */
  maxBodyBytes: number;
  /** Largest image (width × height) an upload may have. */
  maxPixels: number;
  /** Most images one design request may ask for. */
  maxDesignImages: number;
  /** A request not answered by then gets 503 (still queued) or 504 (running), ms. */
  requestTimeoutMs: number;
  /** Most token streams (SSE) open at once; past it, 429. */
  maxStreams: number;
  /**
   * Worker threads that decode uploaded images (0: on the event loop). One keeps the loop free:
   * each libvips call spends a few tenths of a millisecond on the calling thread, about a
   * millisecond an upload, which on the loop delays every other request and the next decode step.
   */
  imageWorkers: number;
}

export const DEFAULT_BATCH: Readonly<BatchSettings> = Object.freeze({ maxBatchSize: 16, maxWaitMs: 5, maxQueue: 64 });
// 32 MiB of body holds a 90-megapixel JPEG product photo (typically 15–25 MB) as multipart;
// base64 in JSON takes a third more.
export const DEFAULT_LIMITS: Readonly<Limits> = Object.freeze({ maxBodyBytes: 32 * 2 ** 20, maxPixels: 150_000_000, maxDesignImages: 4, requestTimeoutMs: 60_000, maxStreams: 4, imageWorkers: 1 });
