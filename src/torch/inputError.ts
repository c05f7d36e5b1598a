// The base of every error about what a user gave m6 — a file, a flag, a row, a run folder — that
// they can fix: the CLI prints it as one line with no stack, the server answers it as a client
// error. It lives in the bottom layer because every layer raises one (io's safetensors files, nn's
// state dicts, data's specs and tokenizers, model's configs, train's checkpoints, pipelines' runs).
//
// Its message is one line whatever it quotes: a parser's message that quotes the bad input (V8's
// JSON.parse does) may carry the input's line breaks and control bytes, which are escaped here.
export class InputError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(oneLine(message), options);
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

/** `text` on one line: line breaks and other control characters (tabs aside) written as escapes, as JSON writes them. */
export function oneLine(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f\u2028\u2029]/g, (c) => (c === '\n' ? '\\n' : c === '\r' ? '\\r' : c === '\t' ? '\t' : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`));
}
