// An operator profiler on libtorch's own instrumentation: every dispatcher op (aten::mm, …) and every
// autograd node (MmBackward0, …) already runs inside a RecordFunction, the hook torch.profiler is
// built on. A global callback times each one and sums, per name (or per name and input shapes),
// calls, total time and self time (total less the ops it called), so a table says where a training
// step's milliseconds went inside libtorch; what the step took beyond the ops' top-level sum is time
// outside libtorch (JavaScript, the loader).
#include <ATen/record_function.h>
#include <chrono>
#include <cstring>
#include <map>
#include <mutex>
#include <sstream>
#include "common.h"

namespace m6 {
namespace {

struct OpStat { uint64_t calls = 0; double totalUs = 0, selfUs = 0, topLevelUs = 0; };
// One open RecordFunction of this thread: when it started, how long the ops it called took, and
// whether it is an autograd node (the ops inside one are the backward pass's).
struct Frame { double startUs; double childUs; bool node; std::string key; };

thread_local std::vector<Frame> openFrames;
thread_local int openNodes = 0;
std::mutex statsMutex;
std::map<std::string, OpStat> stats;
bool recording = false, withShapes = false;
at::CallbackHandle handle = 0;  // the callback, added while recording only

double nowUs() {
  return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// "forward\tNAME" or "backward\tNAME" (inside an autograd node), then the input shapes when asked.
std::string keyOf(const at::RecordFunction& fn) {
  std::string key = std::string(openNodes > 0 ? "backward\t" : "forward\t") + fn.name();
  if (!withShapes || !fn.needsInputs()) return key;
  std::ostringstream s;
  s << key << " [";
  bool first = true;
  for (const c10::IValue& v : fn.inputs()) {
    if (!v.isTensor()) continue;
    const at::Tensor& t = v.toTensor();
    if (!t.defined()) continue;
    s << (first ? "" : ", ") << t.sizes() << ' ' << c10::toString(t.scalar_type());
    first = false;
  }
  s << ']';
  return s.str();
}

std::unique_ptr<at::ObserverContext> onEnter(const at::RecordFunction& fn) {
  // An autograd node, or the engine's frame around one (where it also sums incoming gradients).
  bool node = fn.scope() == at::RecordScope::BACKWARD_FUNCTION || std::strncmp(fn.name(), "autograd::engine::", 18) == 0;
  openNodes += node;
  // The key now: a RecordFunction's inputs can be read in its start callback only.
  openFrames.push_back({nowUs(), 0, node, recording ? keyOf(fn) : std::string()});
  return nullptr;
}

void onExit(const at::RecordFunction& fn, at::ObserverContext*) {
  // An op that was already running when recording started has no frame of its own here.
  if (openFrames.empty()) return;
  Frame f = std::move(openFrames.back());
  openFrames.pop_back();
  double total = nowUs() - f.startUs;
  openNodes -= f.node;
  if (!openFrames.empty()) openFrames.back().childUs += total;
  if (!recording || f.key.empty()) return;
  std::lock_guard<std::mutex> lock(statsMutex);
  OpStat& s = stats[f.key];
  s.calls++;
  s.totalUs += total;
  s.selfUs += total - f.childUs;
  if (openFrames.empty()) s.topLevelUs += total;
}

// profilerStart(shapes: boolean): clears the table and starts timing every op.
napi_value ProfilerStart(napi_env env, napi_callback_info info) {
  M6_TRY
  auto a = args(env, info, 1);
  bool shapes = getBool(env, a[0], "shapes");
  if (recording) throw JsError("the profiler is already recording: stop it first");
  {
    std::lock_guard<std::mutex> lock(statsMutex);
    stats.clear();
  }
  withShapes = shapes;
  handle = at::addGlobalCallback(at::RecordFunctionCallback(onEnter, onExit).needsInputs(shapes));
  recording = true;
  return nullptr;
  M6_CATCH(env)
}

// profilerStop() -> [{ key: 'forward|backward\tname[ shapes]', calls, totalUs, selfUs, topLevelUs }] and removes the callback.
napi_value ProfilerStop(napi_env env, napi_callback_info) {
  M6_TRY
  if (!recording) throw JsError("the profiler is not recording: start it first");
  recording = false;
  at::removeCallback(handle);
  std::lock_guard<std::mutex> lock(statsMutex);
  napi_value out = array(env, stats.size());
  uint32_t i = 0;
  for (const auto& [name, s] : stats) {
    napi_value o = object(env);
    setNamed(env, o, "key", string(env, name));
    setNamed(env, o, "calls", number(env, static_cast<double>(s.calls)));
    setNamed(env, o, "totalUs", number(env, s.totalUs));
    setNamed(env, o, "selfUs", number(env, s.selfUs));
    setNamed(env, o, "topLevelUs", number(env, s.topLevelUs));
    setElement(env, out, i++, o);
  }
  stats.clear();
  return out;
  M6_CATCH(env)
}

}  // namespace

void registerProfiler(napi_env env, napi_value exports) {
  exportFn(env, exports, "profilerStart", ProfilerStart);
  exportFn(env, exports, "profilerStop", ProfilerStop);
}

}  // namespace m6
