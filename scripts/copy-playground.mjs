// Part of `npm run build:ts`: puts the playground's page and style beside its compiled script in
// dist/src/serve/playground/, where the server serves them from.
import { copyFileSync, mkdirSync } from 'node:fs';
const from = new URL('../src/serve/playground/', import.meta.url);
const to = new URL('../dist/src/serve/playground/', import.meta.url);
mkdirSync(to, { recursive: true });
for (const f of ['index.html', 'style.css']) copyFileSync(new URL(f, from), new URL(f, to));
