// Process-wide state: grad mode, the autograd engine, autocast, seeds, threads, and what the
// machine offers (libtorch version, BLAS, devices).
#include <dlfcn.h>
#include <malloc.h>
#include <ATen/Parallel.h>
#include <ATen/detail/CUDAHooksInterface.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/utils.h>
#include "common.h"

namespace m6 {
namespace {

napi_value GradEnabled(napi_env env, napi_callback_info) { return boolean(env, c10::GradMode::is_enabled()); }

napi_value SetGradEnabled(napi_env env, napi_callback_info info) {
  M6_TRY
  auto a = args(env, info, 1);
  c10::GradMode::set_enabled(getBool(env, a[0], "enabled"));
  return nullptr;
  M6_CATCH(env)
}

napi_value RequiresGrad(napi_env env, napi_callback_info info) {
  M6_TRY
  auto a = args(env, info, 1);
  return boolean(env, get(env, a[0]).requires_grad());
  M6_CATCH(env)
}

napi_value SetRequiresGrad(napi_env env, napi_callback_info info) {
  M6_TRY
  auto a = args(env, info, 2);
  const at::Tensor& t = get(env, a[0]);
  bool on = getBool(env, a[1], "requiresGrad");
  if (on && !t.is_leaf())
    throw JsError("requiresGrad can only be set on a leaf tensor (one not computed from others); use detach() first");
  if (on && !(at::isFloatingType(t.scalar_type()) || at::isComplexType(t.scalar_type())))
    throw JsError("only floating-point tensors can require gradients, not " + describe(t));
  t.set_requires_grad(on);
  return nullptr;
  M6_CATCH(env)
}

napi_value IsLeaf(napi_env env, napi_callback_info info) {
  M6_TRY
  auto a = args(env, info, 1);
  return boolean(env, get(env, a[0]).is_leaf());
  M6_CATCH(env)
}

napi_value RetainGrad(napi_env env, napi_callback_info info) {
  M6_TRY
  auto a = args(env, info, 1);
  get(env, a[0]).retain_grad();
  return nullptr;
  M6_CATCH(env)
}

// grad(id) -> id of a new handle to the accumulated gradient, or undefined when there is none.
napi_value Grad(napi_env env, napi_callback_info info) {
  M6_TRY
  auto a = args(env, info, 1);
  const at::Tensor& g = get(env, a[0]).grad();
  if (!g.defined()) return undefined(env);
  return number(env, insert(env, g));
  M6_CATCH(env)
}

// setGrad(id, gradId | null): null drops the gradient (zero_grad(set_to_none=True)).
napi_value SetGrad(napi_env env, napi_callback_info info) {
  M6_TRY
  auto a = args(env, info, 2);
  const at::Tensor& t = get(env, a[0]);
  auto vt = typeOf(env, a[1]);
  if (vt == napi_null || vt == napi_undefined) t.mutable_grad() = at::Tensor();
  else t.mutable_grad() = get(env, a[1]);
  return nullptr;
  M6_CATCH(env)
}

// backward(ids[], gradIds[] (null where implicit), retainGraph, createGraph)
napi_value Backward(napi_env env, napi_callback_info info) {
  M6_TRY
  auto a = args(env, info, 4);
  std::vector<at::Tensor> outputs, grads;
  uint32_t n = arrayLength(env, a[0]);
  for (uint32_t i = 0; i < n; i++) {
    const at::Tensor& t = get(env, element(env, a[0], i));
    if (!t.requires_grad())
      throw JsError("backward: the tensor (" + describe(t) + ") does not require grad: nothing it depends on has requiresGrad, or it was computed under noGrad()");
    outputs.push_back(t);
    napi_value g = a.size() > 1 && isArray(env, a[1]) ? element(env, a[1], i) : nullptr;
    if (g == nullptr || typeOf(env, g) == napi_null || typeOf(env, g) == napi_undefined) {
      if (t.numel() != 1)
        throw JsError("backward: a gradient argument is needed for a non-scalar output (" + describe(t) + ")");
      grads.push_back(at::Tensor());
    } else {
      grads.push_back(get(env, g));
    }
  }
  bool createGraph = a.size() > 3 && typeOf(env, a[3]) == napi_boolean && getBool(env, a[3], "createGraph");
  c10::optional<bool> retain;
  if (a.size() > 2 && typeOf(env, a[2]) == napi_boolean) retain = getBool(env, a[2], "retainGraph");
  torch::autograd::backward(outputs, grads, retain, createGraph);
  return nullptr;
  M6_CATCH(env)
}

c10::DeviceType deviceType(napi_env env, napi_value v) {
  std::string d = getString(env, v, "deviceType");
  if (d == "cpu") return c10::DeviceType::CPU;
  if (d == "cuda") return c10::DeviceType::CUDA;
  throw JsError("autocast: device type must be 'cpu' or 'cuda', got '" + d + "'");
}

// setAutocast(deviceType, enabled, dtype) -> [previousEnabled, previousDtype]
napi_value SetAutocast(napi_env env, napi_callback_info info) {
  M6_TRY
  auto a = args(env, info, 3);
  auto d = deviceType(env, a[0]);
  bool prevOn = m6compat::autocastEnabled(d);
  auto prevDtype = m6compat::autocastDtype(d);
  m6compat::setAutocastEnabled(d, getBool(env, a[1], "enabled"));
  m6compat::setAutocastDtype(d, static_cast<at::ScalarType>(getInt(env, a[2], "dtype")));
  napi_value r = array(env, 2);
  setElement(env, r, 0, boolean(env, prevOn));
  setElement(env, r, 1, number(env, static_cast<int>(prevDtype)));
  return r;
  M6_CATCH(env)
}

// autocastNesting(+1 | -1): entering/leaving an autocast region. Leaving the outermost one drops the
// cache of weights cast to the low-precision dtype, as torch.autocast's __exit__ does.
napi_value AutocastNesting(napi_env env, napi_callback_info info) {
  M6_TRY
  auto a = args(env, info, 1);
  if (getInt(env, a[0], "delta") > 0) return number(env, at::autocast::increment_nesting());
  int depth = at::autocast::decrement_nesting();
  if (depth == 0) at::autocast::clear_cache();
  return number(env, depth);
  M6_CATCH(env)
}

napi_value ManualSeed(napi_env env, napi_callback_info info) {
  M6_TRY
  auto a = args(env, info, 1);
  torch::manual_seed(static_cast<uint64_t>(getInt(env, a[0], "seed")));
  return nullptr;
  M6_CATCH(env)
}

// OpenBLAS is found at run time: it is libtorch's BLAS on Debian, absent from other builds.
template <typename F> F blasFn(const char* name) { return reinterpret_cast<F>(dlsym(RTLD_DEFAULT, name)); }

napi_value SetNumThreads(napi_env env, napi_callback_info info) {
  M6_TRY
  auto a = args(env, info, 1);
  int n = static_cast<int>(getInt(env, a[0], "threads"));
  if (n < 1) throw JsError("setNumThreads: expected at least 1 thread, got " + std::to_string(n));
  at::set_num_threads(n);
  // fp32 matmul runs in OpenBLAS, which keeps its own pool and ignores at::set_num_threads.
  if (auto set = blasFn<void (*)(int)>("openblas_set_num_threads")) set(n);
  return nullptr;
  M6_CATCH(env)
}

// keepLargeAllocations(bytes): glibc serves blocks above its mmap threshold (at most 32 MiB by
// default) with fresh mmap()s and unmaps them on free, so a training step that frees and re-allocates
// hundreds of MiB of activations, gradients and optimizer temporaries pays a page fault per 4 KiB,
// every step. Raising the threshold (and the trim threshold) keeps freed blocks in the heap for reuse:
// the same effect as running PyTorch with MALLOC_MMAP_THRESHOLD_/MALLOC_TRIM_THRESHOLD_ set.
napi_value KeepLargeAllocations(napi_env env, napi_callback_info info) {
  M6_TRY
  auto a = args(env, info, 1);
  int64_t bytes = getInt(env, a[0], "bytes");
  if (bytes <= 0 || bytes > (int64_t(1) << 31) - 1) throw JsError("keepLargeAllocations: bytes must be in (0, 2^31)");
  bool ok = mallopt(M_MMAP_THRESHOLD, static_cast<int>(bytes)) == 1 && mallopt(M_TRIM_THRESHOLD, static_cast<int>(bytes)) == 1;
  return boolean(env, ok);
  M6_CATCH(env)
}

napi_value GetNumThreads(napi_env env, napi_callback_info) { return number(env, at::get_num_threads()); }

// torchVersion(): cheap, for decisions taken when m6 loads (runtimeInfo also builds libtorch's config report).
napi_value TorchVersion(napi_env env, napi_callback_info) { return string(env, TORCH_VERSION); }

napi_value RuntimeInfo(napi_env env, napi_callback_info) {
  M6_TRY
  napi_value r = object(env);
  setNamed(env, r, "torchVersion", string(env, TORCH_VERSION));
  setNamed(env, r, "threads", number(env, at::get_num_threads()));
  setNamed(env, r, "cudaAvailable", boolean(env, at::globalContext().hasCUDA()));
  setNamed(env, r, "cudaDevices", number(env, at::globalContext().hasCUDA() ? at::detail::getCUDAHooks().getNumGPUs() : 0));
  setNamed(env, r, "mkldnn", boolean(env, at::hasMKLDNN()));
  setNamed(env, r, "config", string(env, at::show_config()));
  setNamed(env, r, "parallelInfo", string(env, at::get_parallel_info()));
  // Which BLAS library libtorch's sgemm_ resolves to, and OpenBLAS's own report when it is OpenBLAS.
  Dl_info dl{};
  void* sgemm = dlsym(RTLD_DEFAULT, "sgemm_");
  if (sgemm && dladdr(sgemm, &dl) && dl.dli_fname) setNamed(env, r, "blasLibrary", string(env, dl.dli_fname));
  if (auto cfg = blasFn<char* (*)()>("openblas_get_config")) setNamed(env, r, "openblasConfig", string(env, cfg()));
  if (auto nt = blasFn<int (*)()>("openblas_get_num_threads")) setNamed(env, r, "blasThreads", number(env, nt()));
  if (auto par = blasFn<int (*)()>("openblas_get_parallel")) {
    static const char* kinds[] = {"sequential", "pthreads", "openmp"};
    int p = par();
    setNamed(env, r, "blasParallel", string(env, p >= 0 && p <= 2 ? kinds[p] : "unknown"));
  }
  return r;
  M6_CATCH(env)
}

}  // namespace

void registerRuntime(napi_env env, napi_value exports) {
  exportFn(env, exports, "gradEnabled", GradEnabled);
  exportFn(env, exports, "setGradEnabled", SetGradEnabled);
  exportFn(env, exports, "requiresGrad", RequiresGrad);
  exportFn(env, exports, "setRequiresGrad", SetRequiresGrad);
  exportFn(env, exports, "isLeaf", IsLeaf);
  exportFn(env, exports, "retainGrad", RetainGrad);
  exportFn(env, exports, "grad", Grad);
  exportFn(env, exports, "setGrad", SetGrad);
  exportFn(env, exports, "backward", Backward);
  exportFn(env, exports, "setAutocast", SetAutocast);
  exportFn(env, exports, "autocastNesting", AutocastNesting);
  exportFn(env, exports, "manualSeed", ManualSeed);
  exportFn(env, exports, "setNumThreads", SetNumThreads);
  exportFn(env, exports, "getNumThreads", GetNumThreads);
  exportFn(env, exports, "keepLargeAllocations", KeepLargeAllocations);
  exportFn(env, exports, "runtimeInfo", RuntimeInfo);
  exportFn(env, exports, "torchVersion", TorchVersion);
}

}  // namespace m6
