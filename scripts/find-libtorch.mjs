#!/usr/bin/env node
// Finds the libtorch to build against, in the order tch-rs uses:
//   1. the LIBTORCH environment variable (a folder with include/ and lib/),
//   2. the `torch` package of an installed Python (python3 on PATH, then /usr/bin/python3),
//      when that package ships its C++ headers (pip wheels do; Debian's python3-torch does not),
//   3. the system: Debian/Ubuntu's libtorch-dev (/usr/include/torch, /usr/lib/<triplet>).
// Prints one JSON object: { source, root, includes, libdir, libs, version, cuda, cxx11abi, c10d, blasDir? }.
// c10d says which process-group backends the addon can compile: Gloo when Gloo's headers are present
// (libtorch's own include/gloo in pip wheels, Debian's libgloo-dev), NCCL when the libtorch has CUDA
// and the NCCL and CUDA runtime headers are found.
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
    c10d: c10dFrom(include, root, cuda),
  };
}

// Which c10d backends can be compiled. Gloo's headers must be the same Gloo the libtorch was built with:
// a wheel ships them in include/gloo; Debian's libtorch uses libgloo0, whose headers are libgloo-dev.
function c10dFrom(include, root, cuda) {
  const c10dDir = join(include, 'torch/csrc/distributed/c10d');
  const glooDir = [include, '/usr/include', '/usr/local/include'].find((d) => existsSync(join(d, 'gloo/config.h')));
  const gloo = existsSync(join(c10dDir, 'ProcessGroupGloo.hpp')) && glooDir !== undefined;
  const cudaHome = [process.env.CUDA_HOME, process.env.CUDA_PATH, '/usr/local/cuda'].find((d) => d && existsSync(join(d, 'include/cuda_runtime_api.h')));
  const ncclDir = [include, cudaHome && join(cudaHome, 'include'), '/usr/include', join(root, '../nvidia/nccl/include')]
    .find((d) => d && existsSync(join(d, 'nccl.h')));
  const nccl = cuda && existsSync(join(c10dDir, 'ProcessGroupNCCL.hpp')) && cudaHome !== undefined && ncclDir !== undefined;
  const system = new Set(['/usr/include', '/usr/local/include']);  // already searched; -I of them reorders system headers
  const includes = [...new Set([gloo && !system.has(glooDir) ? glooDir : null, nccl ? join(cudaHome, 'include') : null, nccl ? ncclDir : null].filter(Boolean))];
  // c10d's headers are empty unless USE_C10D_<BACKEND> is defined (libtorch's own build defines them).
  const defines = [...(gloo ? ['USE_C10D_GLOO', 'M6_WITH_GLOO=1'] : []), ...(nccl ? ['USE_C10D_NCCL', 'M6_WITH_NCCL=1'] : [])];
  return { gloo, nccl, includes, defines };
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

// Debian's libtorch calls the system BLAS (libblas.so.3, OpenBLAS's pthreads build by default) for
// fp32 matmul. That build keeps its own thread pool beside libtorch's OpenMP one, and on few cores
// the two fight: OpenMP's threads spin after each parallel region while OpenBLAS's want the cores
// (a 2-core EPYC ran m6-nano's 1024×128×128 matmuls at 25 GFLOP/s on 2 threads against 148 on one).
// OpenBLAS's OpenMP build (libopenblas0-openmp) shares libtorch's pool. The addon names it first
// among its libraries, so it is loaded before libtorch, whose own need for libblas.so.3 the loader
// then answers with the library already loaded under that name. M6_SYSTEM_BLAS=1 keeps the system's.
function openmpBlasFor(found) {
  if (process.env.M6_SYSTEM_BLAS === '1') return null;
  const triplet = process.arch === 'arm64' ? 'aarch64-linux-gnu' : 'x86_64-linux-gnu';
  const dir = `/usr/lib/${triplet}/openblas-openmp`;
  if (!existsSync(join(dir, 'libblas.so.3'))) return null;
  const cpu = readdirSync(found.libdir).find((f) => /^libtorch_cpu\.so/.test(f));
  if (cpu === undefined) return null;
  try {  // only a libtorch that takes its BLAS from the system (a wheel carries MKL inside)
    const dynamic = execFileSync('readelf', ['-d', join(found.libdir, cpu)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    return /\[libblas\.so\.3\]/.test(dynamic) ? dir : null;
  } catch { return null; }
}

export function findLibtorch() {
  if (process.env.M6_LIBTORCH_FOUND) return JSON.parse(process.env.M6_LIBTORCH_FOUND);
  const found = fromEnv() ?? fromPython() ?? fromSystem();
  if (!found) {
    throw new Error('libtorch not found. Install it (Debian/Ubuntu: apt-get install libtorch-dev libopenblas0-pthread), '
      + 'or set LIBTORCH to an unpacked libtorch, or install a Python torch that ships its headers.');
  }
  const blasDir = openmpBlasFor(found);
  if (blasDir) found.blasDir = blasDir;
  return found;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const found = findLibtorch();
  const what = process.argv[2];
  if (what === 'includes') console.log(found.includes.join(' '));
  else if (what === 'libdir') console.log(found.libdir);
  else if (what === 'libs') console.log([...(found.blasDir ? [`-L${found.blasDir}`, '-l:libblas.so.3', `-Wl,-rpath,${found.blasDir}`] : []), ...found.libs.map((l) => `-l${l}`)].join(' '));
  else if (what === 'abi') console.log(found.cxx11abi);
  else if (what === 'c10d-defines') console.log((found.c10d?.defines ?? []).join(' '));
  else if (what === 'c10d-includes') console.log((found.c10d?.includes ?? []).join(' '));
  else console.log(JSON.stringify(found, null, 2));
}
