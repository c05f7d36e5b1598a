#!/usr/bin/env node
// Finds the libtorch to build against, in the order tch-rs uses:
//   1. the LIBTORCH environment variable (a folder with include/ and lib/),
//   2. the `torch` package of an installed Python (python3 on PATH, then /usr/bin/python3),
//      when that package ships its C++ headers (pip wheels do; Debian's python3-torch does not),
//   3. the system: Debian/Ubuntu's libtorch-dev (/usr/include/torch, /usr/lib/<triplet>).
// Prints one JSON object: { source, root, includes, libdir, libs, version, cuda, cxx11abi }.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

function versionFrom(includeDir) {
  // 1.x and early 2.x: torch/csrc/api/include/torch/version.h; recent 2.x: torch/headeronly/version.h.
  const candidates = ['torch/csrc/api/include/torch/version.h', 'torch/headeronly/version.h'].map((f) => join(includeDir, f));
  for (const f of candidates) {
    if (!existsSync(f)) continue;
    const text = readFileSync(f, 'utf8');
    const get = (k) => text.match(new RegExp(`#define TORCH_VERSION_${k}\\s+(\\d+)`))?.[1];
    if (get('MAJOR') !== undefined) return [get('MAJOR'), get('MINOR'), get('PATCH')].join('.');
  }
  return null;
}

function fromRoot(source, root, libdir, cxx11abi) {
  const include = join(root, 'include');
  if (!existsSync(join(include, 'ATen/ATen.h'))) return null;
  const libFiles = existsSync(libdir) ? readdirSync(libdir) : [];
  const cuda = libFiles.some((f) => f.startsWith('libtorch_cuda'));
  const libs = ['torch', 'torch_cpu', 'c10'];
  if (cuda) libs.push('torch_cuda', 'c10_cuda');
  return {
    source, root, libdir, libs, cuda, cxx11abi,
    includes: [include, join(include, 'torch/csrc/api/include')],
    version: versionFrom(include),
  };
}

function fromEnv() {
  const root = process.env.LIBTORCH;
  if (!root) return null;
  const found = fromRoot('LIBTORCH', root, join(root, 'lib'), process.env.LIBTORCH_CXX11_ABI ?? '1');
  if (!found) throw new Error(`LIBTORCH=${root} has no include/ATen/ATen.h: point it at an unpacked libtorch (with include/ and lib/)`);
  return found;
}

function fromPython() {
  for (const py of ['python3', '/usr/bin/python3']) {
    let out;
    try {
      out = execFileSync(py, ['-c', 'import torch,os;print(os.path.dirname(torch.__file__));print(int(torch._C._GLIBCXX_USE_CXX11_ABI))'],
        { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 60_000 });
    } catch { continue; }
    const [dir, abi] = out.trim().split('\n');
    const found = fromRoot(`python:${py}`, dir, join(dir, 'lib'), abi);
    if (found) return found;
  }
  return null;
}

function fromSystem() {
  const triplet = process.arch === 'arm64' ? 'aarch64-linux-gnu' : 'x86_64-linux-gnu';
  const libdir = `/usr/lib/${triplet}`;
  if (!existsSync('/usr/include/ATen/ATen.h') || !existsSync(join(libdir, 'libtorch.so'))) return null;
  return fromRoot('system', '/usr', libdir, '1');
}

export function findLibtorch() {
  if (process.env.M6_LIBTORCH_FOUND) return JSON.parse(process.env.M6_LIBTORCH_FOUND);
  const found = fromEnv() ?? fromPython() ?? fromSystem();
  if (!found) {
    throw new Error('libtorch not found. Install it (Debian/Ubuntu: apt-get install libtorch-dev libopenblas0-pthread), '
      + 'or set LIBTORCH to an unpacked libtorch, or install a Python torch that ships its headers.');
  }
  return found;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const found = findLibtorch();
  const what = process.argv[2];
  if (what === 'includes') console.log(found.includes.join(' '));
  else if (what === 'libdir') console.log(found.libdir);
  else if (what === 'libs') console.log(found.libs.map((l) => `-l${l}`).join(' '));
  else if (what === 'abi') console.log(found.cxx11abi);
  else console.log(JSON.stringify(found, null, 2));
}
