#!/usr/bin/env node
// Builds the native addon when it is missing or older than its sources (the test command calls this).
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const built = join(root, 'native/build/Release/m6_native.node');
const sources = [join(root, 'native/binding.gyp'), ...readdirSync(join(root, 'native/src')).map((f) => join(root, 'native/src', f))];
const stale = !existsSync(built) || sources.some((s) => statSync(s).mtimeMs > statSync(built).mtimeMs);
if (stale) execFileSync(process.execPath, [join(root, 'scripts/build-native.mjs')], { stdio: 'inherit' });
