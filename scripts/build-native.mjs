#!/usr/bin/env node
// Builds the native addon against the libtorch that find-libtorch.mjs picks, with node-gyp
// (bundled with npm, so nothing extra to install) and Node's own headers (--nodedir), so nothing
// is downloaded. Why node-gyp over cmake-js: it ships with npm and knows Node's ABI flags already.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findLibtorch } from './find-libtorch.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const torch = findLibtorch();
console.log(`m6: building the native addon against libtorch ${torch.version} (${torch.source}${torch.cuda ? ', CUDA' : ''})`);

function nodeGyp() {
  const candidates = [];
  try { candidates.push(createRequire(import.meta.url).resolve('node-gyp/bin/node-gyp.js')); } catch { /* not a dependency */ }
  const npmDir = join(dirname(process.execPath), '../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js');
  candidates.push(npmDir, '/usr/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js',
    '/usr/share/nodejs/node-gyp/bin/node-gyp.js');
  const found = candidates.find((c) => existsSync(c));
  if (!found) throw new Error('node-gyp not found: it ships with npm; install npm, or `npm i -g node-gyp`');
  return found;
}

const nodedir = process.env.npm_config_nodedir
  ?? (existsSync(join(dirname(process.execPath), '../include/node/node_api.h')) ? join(dirname(process.execPath), '..') : '/usr');
const args = [nodeGyp(), 'rebuild', `--directory=${join(here, '../native')}`, `--nodedir=${nodedir}`, `--jobs=${process.env.JOBS ?? 'max'}`];
execFileSync(process.execPath, args, { stdio: 'inherit', env: { ...process.env, M6_LIBTORCH_FOUND: JSON.stringify(torch) } });
