// Files that a crash (kill -9, a power cut) must never leave half-written where a reader looks: the
// bytes go to a temp name beside the file, are fsynced, and the temp is renamed over the file (a
// rename within a folder is atomic), then the folder is fsynced so the rename itself is durable.
// A reader sees the old file or the new one, never a mix.
import { closeSync, fsyncSync, openSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/** The temp name a writer of `file` uses: hidden from nothing, but never a name a reader opens. */
export function tempNameFor(file: string): string {
  return `${file}.tmp-${process.pid}`;
}

/** fsync a folder: makes the renames and creations in it durable. */
export function fsyncFolder(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Renames `from` to `to` and fsyncs the folder of `to`: the last step of every atomic write. */
export function renameDurably(from: string, to: string): void {
  renameSync(from, to);
  fsyncFolder(dirname(to));
}

/** Writes `data` to `file` atomically and durably (temp name, fsync, rename, fsync of the folder). */
export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  const tmp = tempNameFor(file);
  try {
    const fd = openSync(tmp, 'w');
    try {
      writeFileSync(fd, data);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameDurably(tmp, file);
  } catch (err) {
    try { unlinkSync(tmp); } catch { /* never written, or already renamed */ }
    throw err;
  }
}
