// The tensor table and the N-API helpers every other file uses.
#include <cstring>
#include <sstream>
#include "common.h"

namespace m6 {

void throwJs(napi_env env, const std::string& msg) {
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (!pending) napi_throw_error(env, nullptr, msg.c_str());
}

#define NAPI_OK(call, what) \
  if ((call) != napi_ok) throw JsError(std::string("m6 native: ") + (what));

std::vector<napi_value> args(napi_env env, napi_callback_info info, size_t expected) {
  size_t argc = expected;
  std::vector<napi_value> argv(expected);
  NAPI_OK(napi_get_cb_info(env, info, &argc, argv.data(), nullptr, nullptr), "reading arguments");
  if (argc < expected) argv.resize(argc);
  return argv;
}
napi_valuetype typeOf(napi_env env, napi_value v) {
  napi_valuetype t;
  napi_typeof(env, v, &t);
  return t;
}
double getNumber(napi_env env, napi_value v, const char* what) {
  double d;
  if (napi_get_value_double(env, v, &d) != napi_ok) throw JsError(std::string(what) + ": expected a number");
  return d;
}
int64_t getInt(napi_env env, napi_value v, const char* what) {
  if (typeOf(env, v) == napi_bigint) {
    int64_t r; bool lossless;
    napi_get_value_bigint_int64(env, v, &r, &lossless);
    return r;
  }
  double d = getNumber(env, v, what);
  if (d != static_cast<double>(static_cast<int64_t>(d))) throw JsError(std::string(what) + ": expected an integer, got " + std::to_string(d));
  return static_cast<int64_t>(d);
}
bool getBool(napi_env env, napi_value v, const char* what) {
  bool b;
  if (napi_get_value_bool(env, v, &b) != napi_ok) throw JsError(std::string(what) + ": expected a boolean");
  return b;
}
std::string getString(napi_env env, napi_value v, const char* what) {
  size_t len;
  if (napi_get_value_string_utf8(env, v, nullptr, 0, &len) != napi_ok) throw JsError(std::string(what) + ": expected a string");
  std::string s(len, '\0');
  napi_get_value_string_utf8(env, v, &s[0], len + 1, &len);
  return s;
}
bool isArray(napi_env env, napi_value v) {
  bool r = false;
  napi_is_array(env, v, &r);
  return r;
}
uint32_t arrayLength(napi_env env, napi_value v) {
  uint32_t n;
  napi_get_array_length(env, v, &n);
  return n;
}
napi_value element(napi_env env, napi_value arr, uint32_t i) {
  napi_value r;
  napi_get_element(env, arr, i, &r);
  return r;
}
std::vector<int64_t> getIntList(napi_env env, napi_value v, const char* what) {
  if (!isArray(env, v)) return {getInt(env, v, what)};
  uint32_t n = arrayLength(env, v);
  std::vector<int64_t> out(n);
  for (uint32_t i = 0; i < n; i++) out[i] = getInt(env, element(env, v, i), what);
  return out;
}
napi_value number(napi_env env, double d) { napi_value r; napi_create_double(env, d, &r); return r; }
napi_value boolean(napi_env env, bool b) { napi_value r; napi_get_boolean(env, b, &r); return r; }
napi_value string(napi_env env, const std::string& s) { napi_value r; napi_create_string_utf8(env, s.data(), s.size(), &r); return r; }
napi_value undefined(napi_env env) { napi_value r; napi_get_undefined(env, &r); return r; }
napi_value null(napi_env env) { napi_value r; napi_get_null(env, &r); return r; }
napi_value array(napi_env env, size_t n) { napi_value r; napi_create_array_with_length(env, n, &r); return r; }
void setElement(napi_env env, napi_value arr, uint32_t i, napi_value v) { napi_set_element(env, arr, i, v); }
void setNamed(napi_env env, napi_value obj, const char* key, napi_value v) { napi_set_named_property(env, obj, key, v); }
napi_value object(napi_env env) { napi_value r; napi_create_object(env, &r); return r; }

void exportFn(napi_env env, napi_value exports, const char* name, napi_callback cb) {
  napi_value fn;
  napi_create_function(env, name, NAPI_AUTO_LENGTH, cb, nullptr, &fn);
  napi_set_named_property(env, exports, name, fn);
}

// ---------------------------------------------------------------------------------------------
// The table. Slot 0 is never used, so id 0 means "no tensor" on the JS side.
namespace {
std::vector<at::Tensor> slots(1);
std::vector<int64_t> slotBytes(1, 0);
std::vector<uint8_t> slotReported(1, 0);
std::vector<uint32_t> freeIds;
int64_t totalBytes = 0;
int64_t unreportedBytes = 0;  // reported to V8 in chunks: one adjust per tensor would cost more than it tells

int64_t hostBytes(const at::Tensor& t) {
  if (!t.defined() || !t.device().is_cpu() || t.is_view() || !t.has_storage()) return 0;
  return static_cast<int64_t>(t.storage().nbytes());
}
// Only memory that the garbage collector alone can free is reported to V8: tensors handed to the
// JS finalizer (reportToGc). Tensors owned by scopes are freed deterministically; reporting them
// would make V8 run full GCs every few MB of activations (measured: ~4% of a bf16 training step).
void reportToV8(napi_env env, int64_t delta) {
  unreportedBytes += delta;
  if (unreportedBytes > (4 << 20) || unreportedBytes < -(4 << 20)) {
    int64_t result;
    napi_adjust_external_memory(env, unreportedBytes, &result);
    unreportedBytes = 0;
  }
}
}  // namespace

uint32_t insert(napi_env env, at::Tensor t) {
  int64_t bytes = hostBytes(t);
  uint32_t id;
  if (!freeIds.empty()) {
    id = freeIds.back();
    freeIds.pop_back();
    slots[id] = std::move(t);
    slotBytes[id] = bytes;
    slotReported[id] = 0;
  } else {
    id = static_cast<uint32_t>(slots.size());
    slots.push_back(std::move(t));
    slotBytes.push_back(bytes);
    slotReported.push_back(0);
  }
  totalBytes += bytes;
  return id;
}

bool validId(uint32_t id) { return id > 0 && id < slots.size() && slots[id].defined(); }

const at::Tensor& getById(uint32_t id) {
  if (!validId(id)) throw JsError("tensor was disposed (or was never a tensor): id " + std::to_string(id));
  return slots[id];
}

const at::Tensor& get(napi_env env, napi_value v) {
  uint32_t id;
  if (napi_get_value_uint32(env, v, &id) != napi_ok) throw JsError("expected a tensor");
  return getById(id);
}

void release(napi_env env, uint32_t id) {
  if (!validId(id)) return;  // double free from a finalizer racing dispose() is harmless
  slots[id] = at::Tensor();
  totalBytes -= slotBytes[id];
  if (slotReported[id]) reportToV8(env, -slotBytes[id]);
  slotBytes[id] = 0;
  slotReported[id] = 0;
  freeIds.push_back(id);
}

void reportToGc(napi_env env, uint32_t id) {
  if (!validId(id) || slotReported[id]) return;
  slotReported[id] = 1;
  if (slotBytes[id]) reportToV8(env, slotBytes[id]);
}

size_t liveCount() { return slots.size() - 1 - freeIds.size(); }
int64_t liveBytes() { return totalBytes; }

// m6's dtype names (those of the TypeScript API), not c10's "Float"/"Long".
static const char* dtypeName(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return "float32";
    case at::kDouble: return "float64";
    case at::kHalf: return "float16";
    case at::kBFloat16: return "bfloat16";
    case at::kLong: return "int64";
    case at::kInt: return "int32";
    case at::kShort: return "int16";
    case at::kChar: return "int8";
    case at::kByte: return "uint8";
    case at::kBool: return "bool";
    default: return c10::toString(t);
  }
}

std::string describe(const at::Tensor& t) {
  if (!t.defined()) return "undefined";
  std::ostringstream s;
  s << t.sizes() << " " << dtypeName(t.scalar_type());
  if (!t.device().is_cpu()) s << " " << t.device();
  return s.str();
}

// ---------------------------------------------------------------------------------------------
namespace {

napi_value Free(napi_env env, napi_callback_info info) {
  M6_TRY
  auto a = args(env, info, 1);
  uint32_t id;
  napi_get_value_uint32(env, a[0], &id);
  release(env, id);
  return nullptr;
  M6_CATCH(env)
}

// freeMany(ids: Uint32Array): a scope frees all it owns in one crossing, read straight from the typed array.
napi_value FreeMany(napi_env env, napi_callback_info info) {
  M6_TRY
  auto a = args(env, info, 1);
  bool typed = false;
  napi_is_typedarray(env, a[0], &typed);
  if (!typed) throw JsError("freeMany: expected a Uint32Array of tensor ids");
  napi_typedarray_type type; size_t n; void* data; napi_value ab; size_t off;
  napi_get_typedarray_info(env, a[0], &type, &n, &data, &ab, &off);
  if (type != napi_uint32_array) throw JsError("freeMany: expected a Uint32Array of tensor ids");
  const uint32_t* ids = static_cast<const uint32_t*>(data);
  for (size_t i = 0; i < n; i++) release(env, ids[i]);
  return nullptr;
  M6_CATCH(env)
}

// reportToGc(id): this tensor is now the finalizer's to free: tell V8 about its bytes.
napi_value ReportToGc(napi_env env, napi_callback_info info) {
  M6_TRY
  auto a = args(env, info, 1);
  uint32_t id;
  if (napi_get_value_uint32(env, a[0], &id) == napi_ok) reportToGc(env, id);
  return nullptr;
  M6_CATCH(env)
}

napi_value LiveCount(napi_env env, napi_callback_info) { return number(env, static_cast<double>(liveCount())); }
napi_value LiveBytes(napi_env env, napi_callback_info) { return number(env, static_cast<double>(liveBytes())); }

napi_value Shape(napi_env env, napi_callback_info info) {
  M6_TRY
  auto a = args(env, info, 1);
  const at::Tensor& t = get(env, a[0]);
  auto sizes = t.sizes();
  napi_value r = array(env, sizes.size());
  for (size_t i = 0; i < sizes.size(); i++) setElement(env, r, i, number(env, static_cast<double>(sizes[i])));
  return r;
  M6_CATCH(env)
}

napi_value Dtype(napi_env env, napi_callback_info info) {
  M6_TRY
  auto a = args(env, info, 1);
  return number(env, static_cast<int>(get(env, a[0]).scalar_type()));
  M6_CATCH(env)
}

napi_value Device(napi_env env, napi_callback_info info) {
  M6_TRY
  auto a = args(env, info, 1);
  return string(env, get(env, a[0]).device().str());
  M6_CATCH(env)
}

napi_value IsContiguous(napi_env env, napi_callback_info info) {
  M6_TRY
  auto a = args(env, info, 1);
  return boolean(env, get(env, a[0]).is_contiguous());
  M6_CATCH(env)
}

napi_value Describe(napi_env env, napi_callback_info info) {
  M6_TRY
  auto a = args(env, info, 1);
  return string(env, describe(get(env, a[0])));
  M6_CATCH(env)
}

// fromBytes(bytes: ArrayBufferView, shape: number[], dtype: number) -> id. Copies.
napi_value FromBytes(napi_env env, napi_callback_info info) {
  M6_TRY
  auto a = args(env, info, 3);
  if (a.size() < 3) throw JsError("fromBytes(bytes, shape, dtype)");
  void* data = nullptr;
  size_t length = 0;
  bool isTyped = false, isDataView = false, isBuf = false;
  napi_is_typedarray(env, a[0], &isTyped);
  napi_is_dataview(env, a[0], &isDataView);
  napi_is_arraybuffer(env, a[0], &isBuf);
  if (isTyped) {
    napi_typedarray_type type; size_t n; napi_value ab; size_t off;
    napi_get_typedarray_info(env, a[0], &type, &n, &data, &ab, &off);
    size_t elem = 1;
    switch (type) {
      case napi_int16_array: case napi_uint16_array: elem = 2; break;
      case napi_int32_array: case napi_uint32_array: case napi_float32_array: elem = 4; break;
      case napi_float64_array: case napi_bigint64_array: case napi_biguint64_array: elem = 8; break;
      default: elem = 1;
    }
    length = n * elem;
  } else if (isDataView) {
    napi_value ab; size_t off;
    napi_get_dataview_info(env, a[0], &length, &data, &ab, &off);
  } else if (isBuf) {
    napi_get_arraybuffer_info(env, a[0], &data, &length);
  } else {
    throw JsError("fromBytes: expected a TypedArray, DataView or ArrayBuffer");
  }
  auto shape = getIntList(env, a[1], "shape");
  auto dtype = static_cast<at::ScalarType>(getInt(env, a[2], "dtype"));
  at::Tensor t = at::empty(shape, at::TensorOptions().dtype(dtype));
  if (t.nbytes() != length)
    throw JsError("fromBytes: " + std::to_string(length) + " bytes do not fill a " + describe(t) + " tensor (" +
                  std::to_string(t.nbytes()) + " bytes)");
  if (length) std::memcpy(t.data_ptr(), data, length);
  return number(env, insert(env, std::move(t)));
  M6_CATCH(env)
}

// toBytes(id) -> ArrayBuffer holding the tensor's elements, contiguous, copied to the CPU.
napi_value ToBytes(napi_env env, napi_callback_info info) {
  M6_TRY
  auto a = args(env, info, 1);
  at::Tensor t = get(env, a[0]);
  if (t.device().is_meta()) throw JsError("toBytes: a meta tensor has no data (" + describe(t) + ")");
  {
    at::NoGradGuard g;
    t = t.to(at::kCPU).contiguous();
  }
  size_t n = t.nbytes();
  void* out;
  napi_value ab;
  napi_create_arraybuffer(env, n, &out, &ab);
  if (n) std::memcpy(out, t.data_ptr(), n);
  return ab;
  M6_CATCH(env)
}

napi_value Item(napi_env env, napi_callback_info info) {
  M6_TRY
  auto a = args(env, info, 1);
  const at::Tensor& t = get(env, a[0]);
  if (t.numel() != 1) throw JsError("item: a tensor with " + std::to_string(t.numel()) + " elements (" + describe(t) + ") cannot be converted to a number");
  at::Scalar s = t.item();
  if (s.isBoolean()) return boolean(env, s.toBool());
  if (s.isIntegral(false)) return number(env, static_cast<double>(s.toLong()));
  return number(env, s.toDouble());
  M6_CATCH(env)
}

}  // namespace

void registerTable(napi_env env, napi_value exports) {
  exportFn(env, exports, "free", Free);
  exportFn(env, exports, "freeMany", FreeMany);
  exportFn(env, exports, "reportToGc", ReportToGc);
  exportFn(env, exports, "liveCount", LiveCount);
  exportFn(env, exports, "liveBytes", LiveBytes);
  exportFn(env, exports, "shape", Shape);
  exportFn(env, exports, "dtype", Dtype);
  exportFn(env, exports, "device", Device);
  exportFn(env, exports, "describe", Describe);
  exportFn(env, exports, "isContiguous", IsContiguous);
  exportFn(env, exports, "fromBytes", FromBytes);
  exportFn(env, exports, "toBytes", ToBytes);
  exportFn(env, exports, "item", Item);
}

}  // namespace m6
