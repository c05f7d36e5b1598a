/** An error the user can fix (bad flag, missing file, unusable data): printed as one line, no stack. */
export class UsageError extends Error {
  constructor(message: string, readonly exitCode = 2) {
    super(message);
    this.name = 'UsageError';
  }
}
