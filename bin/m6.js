#!/usr/bin/env node
// The `m6` command. The TypeScript sources compile to dist/ (npm run build).
import { existsSync } from 'node:fs';
const main = new URL('../dist/src/cli/main.js', import.meta.url);
if (!existsSync(main)) {
  console.error('m6: not built yet. Run `npm run build` (or `bash scripts/quickstart.sh` on a fresh machine).');
  process.exit(1);
}
const { run } = await import(main.href);
process.exitCode = await run(process.argv);
