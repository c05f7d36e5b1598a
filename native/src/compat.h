// The one place where libtorch 1.13 (Debian 12) and libtorch 2.x (CUDA builds) differ for m6.
// Everything else in the addon uses APIs that both versions share: the dispatcher, IValue,
// FunctionSchema, GradMode, the autograd engine entry point.
#pragma once
#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/version.h>

namespace m6compat {

#if TORCH_VERSION_MAJOR >= 2 && (TORCH_VERSION_MAJOR > 2 || TORCH_VERSION_MINOR >= 4)
// 2.4 replaced the per-device autocast setters with ones taking a DeviceType.
inline bool autocastEnabled(c10::DeviceType d) { return at::autocast::is_autocast_enabled(d); }
inline void setAutocastEnabled(c10::DeviceType d, bool on) { at::autocast::set_autocast_enabled(d, on); }
inline at::ScalarType autocastDtype(c10::DeviceType d) { return at::autocast::get_autocast_dtype(d); }
inline void setAutocastDtype(c10::DeviceType d, at::ScalarType t) { at::autocast::set_autocast_dtype(d, t); }
#else
inline bool autocastEnabled(c10::DeviceType d) {
  return d == c10::DeviceType::CPU ? at::autocast::is_cpu_enabled() : at::autocast::is_enabled();
}
inline void setAutocastEnabled(c10::DeviceType d, bool on) {
  if (d == c10::DeviceType::CPU) at::autocast::set_cpu_enabled(on); else at::autocast::set_enabled(on);
}
inline at::ScalarType autocastDtype(c10::DeviceType d) {
  return d == c10::DeviceType::CPU ? at::autocast::get_autocast_cpu_dtype() : at::autocast::get_autocast_gpu_dtype();
}
inline void setAutocastDtype(c10::DeviceType d, at::ScalarType t) {
  if (d == c10::DeviceType::CPU) at::autocast::set_autocast_cpu_dtype(t); else at::autocast::set_autocast_gpu_dtype(t);
}
#endif

// Schema types: 1.13 and 2.x both parse `SymInt`/`SymInt[]`; both accept plain int IValues for them.
inline bool isIntLike(c10::TypeKind k) { return k == c10::TypeKind::IntType || k == c10::TypeKind::SymIntType; }

}  // namespace m6compat

// --- c10d (src/distributed.cc defines M6_COMPAT_C10D before including this header) ---
// c10d's headers are empty unless USE_C10D_GLOO / USE_C10D_NCCL is defined; binding.gyp defines them, with
// M6_WITH_GLOO / M6_WITH_NCCL, only where find-libtorch.mjs found the backend's headers.
#if defined(M6_COMPAT_C10D) && defined(M6_WITH_GLOO)
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#if defined(M6_WITH_NCCL)
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

namespace m6compat {
// 2.0 split c10d's ProcessGroup into a dispatching ProcessGroup over per-device Backends, and
// ProcessGroupGloo/ProcessGroupNCCL became Backends. The collectives m6 calls (allreduce, broadcast,
// allgather, alltoall_base, barrier) kept their signatures on both bases, so m6 holds a backend
// through the common base class of its version.
#if TORCH_VERSION_MAJOR >= 2
using C10dBackend = c10d::Backend;
#else
using C10dBackend = c10d::ProcessGroup;
#endif
using C10dWork = c10d::Work;  // 1.13 and 2.x: c10d::Work (ProcessGroup::Work before 1.13)
}  // namespace m6compat
#endif
