#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages m6 needs, when run as root; otherwise prints the exact command.
#   libtorch-dev          libtorch (CPU, with Gloo) and its headers: the engine m6 binds
#   libopenblas0-pthread  the BLAS Debian's libtorch uses for fp32 matmul (without it, ~60x slower)
#   libopenblas0-openmp   the same OpenBLAS on libtorch's own OpenMP threads, which the addon loads in place of the
#                         pthreads one (scripts/find-libtorch.mjs): two thread pools on few cores made fp32 steps ~2x slower
#   python3-torch         the same libtorch from Python: the reference of `npm run bench` and of test fixtures
#   libgloo-dev           Gloo's headers, which c10d's ProcessGroupGloo.hpp includes: without them the addon builds
#                         without process groups (src/distributed/ then says so); same version as libtorch's libgloo0
#   g++ make python3      node-gyp's toolchain for the native addon
#   chromium              the browser the playground test drives (playwright-core, which downloads none)
#   iproute2              ip netns: the two-host distributed test makes two network namespaces
set -euo pipefail
PACKAGES=(libtorch-dev libopenblas0-pthread libopenblas0-openmp python3-torch libgloo-dev g++ make python3 chromium iproute2)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "m6: system packages present (${PACKAGES[*]})"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "m6: missing system packages: ${missing[*]}" >&2
  echo "m6: run as root:  apt-get update && apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "m6: installing ${missing[*]} (libtorch-dev brings ~240 packages, ~900 MB; a few minutes)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The BLAS alternative must point at OpenBLAS (pthreads) for fast fp32 matmul.
update-alternatives --query libblas.so.3-x86_64-linux-gnu 2>/dev/null | grep -q '^Value: .*openblas' \
  || echo "m6: warning: libblas.so.3 does not point at OpenBLAS; run: update-alternatives --config libblas.so.3-x86_64-linux-gnu" >&2
