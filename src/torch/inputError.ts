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
