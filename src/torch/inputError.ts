// The base of every error about what a user gave m6 — a file, a flag, a row, a run folder — that
// they can fix: the CLI prints it as one line with no stack, the server answers it as a client
// error. It lives in the bottom layer because every layer raises one (io's safetensors files, nn's
// state dicts, data's specs and tokenizers, model's configs, train's checkpoints, pipelines' runs).
export class InputError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'InputError';
  }
}

/**
 * Why a file m6 was given could not be read, said as what it is (it does not exist, it is a folder,
 * it may not be read), never as "missing" when it is there; every reader of a user's file wraps this
 * in its own InputError, after the file's name.
 */
export function fileReadProblem(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT') return 'does not exist';
  if (code === 'EISDIR') return 'is a folder, expected a file';
  if (code === 'ENOTDIR') return 'does not exist (a part of its path is a file, not a folder)';
  if (code === 'EACCES' || code === 'EPERM') return 'cannot be read: permission denied (check its owner and mode)';
  return `cannot be read: ${(err as Error | undefined)?.message ?? String(err)}`;
}
