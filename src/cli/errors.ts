import { InputError } from '../torch/inputError.js';

/** An error the user can fix (bad flag, missing file, unusable data): printed as one line, no stack. */
export class UsageError extends Error {
  constructor(message: string, readonly exitCode = 2) {
    super(message);
    this.name = 'UsageError';
  }
}

/** Errors about what the user gave (every InputError, from any layer) become usage errors; the rest pass unchanged. */
export function asUsageError(err: unknown): unknown {
  return err instanceof InputError ? new UsageError(err.message) : err;
}
