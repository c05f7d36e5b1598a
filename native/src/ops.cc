// One generic entry point to every ATen operator: look the operator up once by name and overload,
// then call it with arguments converted by its schema, through the dispatcher's boxed path
// (autograd, autocast and device dispatch included). Typed wrappers live in TypeScript.
#include <memory>
#include <sstream>
#include "common.h"

namespace m6 {
namespace {

enum class Kind { Tensor, TensorList, OptTensorList, Int, IntList, Float, FloatList, Bool, BoolList, Scalar, Str, Device, Generator, Unsupported };

struct ArgSpec {
  std::string name;
  std::string type;
  Kind kind;
  bool optional;
  bool kwOnly;
  c10::optional<c10::IValue> def;
};

struct OpEntry {
  c10::OperatorHandle handle;
  std::string name;  // "aten::add.Tensor"
  std::vector<ArgSpec> args;
  std::vector<bool> returnsAliasOfInput;  // in-place/out returns: JS already holds that tensor
  std::vector<std::string> returnTypes;
};

std::vector<OpEntry> ops;

Kind kindOf(const c10::TypePtr& t, bool& optional) {
  c10::TypePtr type = t;
  optional = false;
  if (type->kind() == c10::TypeKind::OptionalType) {
    optional = true;
    type = type->castRaw<c10::OptionalType>()->getElementType();
  }
  switch (type->kind()) {
    case c10::TypeKind::TensorType: return Kind::Tensor;
    case c10::TypeKind::IntType: case c10::TypeKind::SymIntType: return Kind::Int;
    case c10::TypeKind::FloatType: return Kind::Float;
    case c10::TypeKind::BoolType: return Kind::Bool;
    case c10::TypeKind::NumberType: return Kind::Scalar;
    case c10::TypeKind::StringType: return Kind::Str;
    case c10::TypeKind::DeviceObjType: return Kind::Device;
    case c10::TypeKind::GeneratorType: return Kind::Generator;
    case c10::TypeKind::ListType: {
      auto elem = type->castRaw<c10::ListType>()->getElementType();
      auto ek = elem->kind();
      if (ek == c10::TypeKind::TensorType) return Kind::TensorList;
      if (ek == c10::TypeKind::OptionalType &&
          elem->castRaw<c10::OptionalType>()->getElementType()->kind() == c10::TypeKind::TensorType)
        return Kind::OptTensorList;
      if (m6compat::isIntLike(ek)) return Kind::IntList;
      if (ek == c10::TypeKind::FloatType) return Kind::FloatList;
      if (ek == c10::TypeKind::BoolType) return Kind::BoolList;
      return Kind::Unsupported;
    }
    default: return Kind::Unsupported;
  }
}

const OpEntry& opById(napi_env env, napi_value v) {
  uint32_t id;
  if (napi_get_value_uint32(env, v, &id) != napi_ok || id >= ops.size()) throw JsError("unknown operator handle");
  return ops[id];
}

bool isIntegral(at::ScalarType t) { return at::isIntegralType(t, /*includeBool=*/true); }

// JS has one number type. A Scalar becomes an integer only when the tensor it meets is integral, so
// `intTensor + 2` stays int64 while `floatTensor + 2` and `floatTensor + 2.5` stay float (as in Python).
at::Scalar toScalar(napi_env env, napi_value v, at::ScalarType like, const ArgSpec& a) {
  switch (typeOf(env, v)) {
    case napi_boolean: return at::Scalar(getBool(env, v, a.name.c_str()));
    case napi_bigint: return at::Scalar(getInt(env, v, a.name.c_str()));
    case napi_number: {
      double d = getNumber(env, v, a.name.c_str());
      if (isIntegral(like) && d == static_cast<double>(static_cast<int64_t>(d))) return at::Scalar(static_cast<int64_t>(d));
      return at::Scalar(d);
    }
    default: throw JsError("argument '" + a.name + "' (" + a.type + "): expected a number or boolean");
  }
}

c10::IValue toIValue(napi_env env, napi_value v, const ArgSpec& a, at::ScalarType& like, bool& sawTensor) {
  if (a.kind == Kind::Tensor) {
    // The hot path: a tensor handle. One N-API call; anything else falls through to the checks below.
    uint32_t id;
    if (v != nullptr && napi_get_value_uint32(env, v, &id) == napi_ok) {
      const at::Tensor& t = getById(id);
      if (!sawTensor) { like = t.scalar_type(); sawTensor = true; }
      return c10::IValue(t);
    }
  }
  napi_valuetype vt = v == nullptr ? napi_undefined : typeOf(env, v);
  if (vt == napi_undefined) {
    if (a.def) return *a.def;
    if (a.optional) return c10::IValue();
    throw JsError("missing argument '" + a.name + "' (" + a.type + ")");
  }
  if (vt == napi_null) {
    if (a.optional) return c10::IValue();
    throw JsError("argument '" + a.name + "' (" + a.type + ") cannot be null");
  }
  const char* what = a.name.c_str();
  switch (a.kind) {
    case Kind::Tensor: {
      const at::Tensor& t = get(env, v);
      if (!sawTensor) { like = t.scalar_type(); sawTensor = true; }
      return c10::IValue(t);
    }
    case Kind::TensorList: {
      if (!isArray(env, v)) throw JsError("argument '" + a.name + "': expected an array of tensors");
      uint32_t n = arrayLength(env, v);
      c10::List<at::Tensor> list;
      list.reserve(n);
      for (uint32_t i = 0; i < n; i++) {
        const at::Tensor& t = get(env, element(env, v, i));
        if (!sawTensor) { like = t.scalar_type(); sawTensor = true; }
        list.push_back(t);
      }
      return c10::IValue(list);
    }
    case Kind::OptTensorList: {
      if (!isArray(env, v)) throw JsError("argument '" + a.name + "': expected an array of tensors or nulls");
      uint32_t n = arrayLength(env, v);
      c10::List<c10::optional<at::Tensor>> list;
      list.reserve(n);
      for (uint32_t i = 0; i < n; i++) {
        napi_value e = element(env, v, i);
        auto et = typeOf(env, e);
        if (et == napi_null || et == napi_undefined) list.push_back(c10::nullopt);
        else list.push_back(get(env, e));
      }
      return c10::IValue(list);
    }
    case Kind::Int: return c10::IValue(getInt(env, v, what));
    case Kind::IntList: return c10::IValue(getIntList(env, v, what));
    case Kind::Float: return c10::IValue(getNumber(env, v, what));
    case Kind::FloatList: {
      std::vector<double> out;
      if (isArray(env, v)) {
        uint32_t n = arrayLength(env, v);
        for (uint32_t i = 0; i < n; i++) out.push_back(getNumber(env, element(env, v, i), what));
      } else {
        out.push_back(getNumber(env, v, what));
      }
      return c10::IValue(out);
    }
    case Kind::Bool: return c10::IValue(getBool(env, v, what));
    case Kind::BoolList: {
      c10::List<bool> out;
      uint32_t n = arrayLength(env, v);
      for (uint32_t i = 0; i < n; i++) out.push_back(getBool(env, element(env, v, i), what));
      return c10::IValue(out);
    }
    case Kind::Scalar: return c10::IValue(toScalar(env, v, like, a));
    case Kind::Str: return c10::IValue(getString(env, v, what));
    case Kind::Device: return c10::IValue(c10::Device(getString(env, v, what)));
    case Kind::Generator: throw JsError("argument '" + a.name + "': generators are not supported; use manualSeed()");
    case Kind::Unsupported: break;
  }
  throw JsError("argument '" + a.name + "' has a type m6 cannot pass yet: " + a.type);
}

napi_value fromIValue(napi_env env, const c10::IValue& v) {
  if (v.isTensor()) {
    const at::Tensor& t = v.toTensor();
    if (!t.defined()) return undefined(env);
    napi_value id;
    napi_create_uint32(env, insert(env, t), &id);
    return id;
  }
  if (v.isTensorList()) {
    auto list = v.toTensorVector();
    napi_value r = array(env, list.size());
    for (size_t i = 0; i < list.size(); i++) setElement(env, r, i, number(env, insert(env, list[i])));
    return r;
  }
  if (v.isNone()) return undefined(env);
  if (v.isInt()) return number(env, static_cast<double>(v.toInt()));
  if (v.isDouble()) return number(env, v.toDouble());
  if (v.isBool()) return boolean(env, v.toBool());
  if (v.isScalar()) {
    auto s = v.toScalar();
    if (s.isBoolean()) return boolean(env, s.toBool());
    if (s.isIntegral(false)) return number(env, static_cast<double>(s.toLong()));
    return number(env, s.toDouble());
  }
  if (v.isIntList()) {
    auto l = v.toIntVector();
    napi_value r = array(env, l.size());
    for (size_t i = 0; i < l.size(); i++) setElement(env, r, i, number(env, static_cast<double>(l[i])));
    return r;
  }
  if (v.isString()) return string(env, v.toStringRef());
  throw JsError(std::string("cannot return a value of type ") + v.tagKind() + " to JavaScript");
}

// "aten::mm: mat1 and mat2 shapes cannot be multiplied (2x3 and 4x5) [self: [2, 3] float32, mat2: [4, 5] float32]"
std::string withContext(napi_env env, const OpEntry& op, const napi_value* argv, size_t argc, const std::string& msg) {
  std::ostringstream s;
  s << op.name << ": " << msg;
  std::string sep = " [";
  for (size_t i = 0; i < argc && i < op.args.size(); i++) {
    const ArgSpec& a = op.args[i];
    if (a.kind == Kind::Tensor) {
      uint32_t id;
      if (napi_get_value_uint32(env, argv[i], &id) == napi_ok && validId(id)) {
        s << sep << a.name << ": " << describe(getById(id));
        sep = ", ";
      }
    } else if (a.kind == Kind::TensorList && isArray(env, argv[i])) {
      s << sep << a.name << ": [";
      uint32_t n = arrayLength(env, argv[i]);
      for (uint32_t j = 0; j < n && j < 8; j++) {
        uint32_t id;
        if (napi_get_value_uint32(env, element(env, argv[i], j), &id) == napi_ok && validId(id))
          s << (j ? "; " : "") << describe(getById(id));
      }
      s << (n > 8 ? "; …]" : "]");
      sep = ", ";
    }
  }
  if (sep == ", ") s << "]";
  return s.str();
}

constexpr size_t kMaxArgs = 32;

void fillStack(napi_env env, torch::jit::Stack& stack, const OpEntry& op, const napi_value* argv, size_t argc) {
  if (argc > op.args.size())
    throw JsError("too many arguments: " + std::to_string(argc) + " given, the schema has " + std::to_string(op.args.size()));
  stack.clear();
  at::ScalarType like = at::kFloat;
  bool sawTensor = false;
  for (size_t i = 0; i < op.args.size(); i++) stack.push_back(toIValue(env, i < argc ? argv[i] : nullptr, op.args[i], like, sawTensor));
}

napi_value returnsToJs(napi_env env, const OpEntry& op, torch::jit::Stack& stack) {
  size_t n = stack.size();
  if (n == 0) return undefined(env);
  auto one = [&](size_t i) { return i < op.returnsAliasOfInput.size() && op.returnsAliasOfInput[i] ? null(env) : fromIValue(env, stack[i]); };
  if (n == 1) return one(0);
  napi_value r = array(env, n);
  for (size_t i = 0; i < n; i++) setElement(env, r, i, one(i));
  return r;
}

// opHandle(name, overload) -> { id, name, args: [{name, type, optional, hasDefault, kwOnly}], returns: [type] }
napi_value OpHandle(napi_env env, napi_callback_info info) {
  M6_TRY
  auto a = args(env, info, 2);
  std::string name = getString(env, a[0], "name");
  std::string overload = a.size() > 1 && typeOf(env, a[1]) == napi_string ? getString(env, a[1], "overload") : "";
  auto handle = c10::Dispatcher::singleton().findSchema({name, overload});
  if (!handle) throw JsError("no operator " + name + (overload.empty() ? "" : "." + overload) + " in this libtorch");
  OpEntry e{*handle, name + (overload.empty() ? "" : "." + overload), {}, {}, {}};
  const auto& schema = handle->schema();
  for (const auto& arg : schema.arguments()) {
    bool optional;
    Kind k = kindOf(arg.type(), optional);
    e.args.push_back({arg.name(), arg.type()->str(), k, optional, arg.kwarg_only(), arg.default_value()});
  }
  for (const auto& ret : schema.returns()) {
    e.returnsAliasOfInput.push_back(ret.alias_info() != nullptr && ret.alias_info()->isWrite());
    e.returnTypes.push_back(ret.type()->str());
  }
  uint32_t id = static_cast<uint32_t>(ops.size());
  ops.push_back(std::move(e));
  const OpEntry& op = ops.back();
  napi_value r = object(env);
  setNamed(env, r, "id", number(env, id));
  setNamed(env, r, "name", string(env, op.name));
  napi_value as = array(env, op.args.size());
  for (size_t i = 0; i < op.args.size(); i++) {
    napi_value o = object(env);
    setNamed(env, o, "name", string(env, op.args[i].name));
    setNamed(env, o, "type", string(env, op.args[i].type));
    setNamed(env, o, "optional", boolean(env, op.args[i].optional));
    setNamed(env, o, "hasDefault", boolean(env, op.args[i].def.has_value()));
    setNamed(env, o, "kwOnly", boolean(env, op.args[i].kwOnly));
    setElement(env, as, i, o);
  }
  setNamed(env, r, "args", as);
  napi_value rs = array(env, op.returnTypes.size());
  for (size_t i = 0; i < op.returnTypes.size(); i++) setElement(env, rs, i, string(env, op.returnTypes[i]));
  setNamed(env, r, "returns", rs);
  return r;
  M6_CATCH(env)
}

// Most calls pass few arguments: read up to kFewArgs first, and ask again only when there are more
// (napi_get_cb_info fills every slot it is given).
constexpr size_t kFewArgs = 10;

size_t readArgs(napi_env env, napi_callback_info info, napi_value* argv) {
  size_t argc = kFewArgs;
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  if (argc > kFewArgs) {
    if (argc > kMaxArgs + 1) throw JsError("too many arguments (at most " + std::to_string(kMaxArgs) + ")");
    napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  }
  return argc;
}

// The main thread's argument stack, reused call after call (its capacity stays; no allocation per op).
torch::jit::Stack mainStack;

// call(opId, ...args): arguments in schema order; undefined means the schema's default.
napi_value Call(napi_env env, napi_callback_info info) {
  napi_value argv[kMaxArgs + 1];
  size_t argc = 0;
  const OpEntry* op = nullptr;
  try {
    argc = readArgs(env, info, argv);
    if (argc == 0) throw JsError("call(op, ...args): missing operator handle");
    op = &opById(env, argv[0]);
    fillStack(env, mainStack, *op, argv + 1, argc - 1);
    op->handle.callBoxed(&mainStack);
    napi_value r = returnsToJs(env, *op, mainStack);
    mainStack.clear();
    return r;
  } catch (const c10::Error& e) {
    mainStack.clear();
    throwJs(env, op ? withContext(env, *op, argv + 1, argc - 1, e.what_without_backtrace()) : e.what_without_backtrace());
  } catch (const std::exception& e) {
    mainStack.clear();
    throwJs(env, op ? withContext(env, *op, argv + 1, argc - 1, e.what()) : e.what());
  }
  return nullptr;
}

// ---------------------------------------------------------------------------------------------
// callAsync: the same call on libuv's thread pool, so a long forward pass does not block the event loop.
// Grad mode and autocast are thread-local in libtorch, so the caller's state travels with the work.
struct AsyncCall {
  napi_async_work work = nullptr;
  napi_deferred deferred = nullptr;
  const OpEntry* op = nullptr;
  torch::jit::Stack stack;
  bool grad = true;
  bool autocastCpu = false;
  at::ScalarType autocastCpuDtype = at::kBFloat16;
  std::string error;
};

void executeAsync(napi_env, void* data) {
  auto* c = static_cast<AsyncCall*>(data);
  try {
    c10::AutoGradMode gradMode(c->grad);
    bool prevOn = m6compat::autocastEnabled(c10::DeviceType::CPU);
    at::ScalarType prevDtype = m6compat::autocastDtype(c10::DeviceType::CPU);
    m6compat::setAutocastEnabled(c10::DeviceType::CPU, c->autocastCpu);
    m6compat::setAutocastDtype(c10::DeviceType::CPU, c->autocastCpuDtype);
    c->op->handle.callBoxed(&c->stack);
    m6compat::setAutocastEnabled(c10::DeviceType::CPU, prevOn);
    m6compat::setAutocastDtype(c10::DeviceType::CPU, prevDtype);
  } catch (const c10::Error& e) {
    c->error = c->op->name + ": " + e.what_without_backtrace();
  } catch (const std::exception& e) {
    c->error = c->op->name + ": " + e.what();
  }
}

void completeAsync(napi_env env, napi_status, void* data) {
  auto* c = static_cast<AsyncCall*>(data);
  napi_value result = nullptr;
  std::string error = c->error;
  if (error.empty()) {
    try { result = returnsToJs(env, *c->op, c->stack); } catch (const std::exception& e) { error = e.what(); }
  }
  if (error.empty()) {
    napi_resolve_deferred(env, c->deferred, result);
  } else {
    napi_value msg, err;
    napi_create_string_utf8(env, error.c_str(), error.size(), &msg);
    napi_create_error(env, nullptr, msg, &err);
    napi_reject_deferred(env, c->deferred, err);
  }
  napi_delete_async_work(env, c->work);
  delete c;
}

napi_value CallAsync(napi_env env, napi_callback_info info) {
  napi_value argv[kMaxArgs + 1];
  size_t argc = 0;
  const OpEntry* op = nullptr;
  try {
    argc = readArgs(env, info, argv);
    if (argc == 0) throw JsError("callAsync(op, ...args): missing operator handle");
    op = &opById(env, argv[0]);
    auto owned = std::make_unique<AsyncCall>();  // freed here if conversion throws, else by completeAsync
    AsyncCall* c = owned.get();
    c->op = op;
    fillStack(env, c->stack, *op, argv + 1, argc - 1);
    c->grad = c10::GradMode::is_enabled();
    c->autocastCpu = m6compat::autocastEnabled(c10::DeviceType::CPU);
    c->autocastCpuDtype = m6compat::autocastDtype(c10::DeviceType::CPU);
    napi_value promise, name;
    napi_create_promise(env, &c->deferred, &promise);
    napi_create_string_utf8(env, "m6.callAsync", NAPI_AUTO_LENGTH, &name);
    napi_create_async_work(env, nullptr, name, executeAsync, completeAsync, c, &c->work);
    napi_queue_async_work(env, c->work);
    owned.release();
    return promise;
  } catch (const c10::Error& e) {
    throwJs(env, op ? withContext(env, *op, argv + 1, argc - 1, e.what_without_backtrace()) : e.what_without_backtrace());
  } catch (const std::exception& e) {
    throwJs(env, op ? withContext(env, *op, argv + 1, argc - 1, e.what()) : e.what());
  }
  return nullptr;
}

// hasOp(name, overload) -> boolean: lets TS pick a native operator where this libtorch has it
// (e.g. scaled_dot_product_attention, new in 2.0) and compose it from older ones where not.
napi_value HasOp(napi_env env, napi_callback_info info) {
  M6_TRY
  auto a = args(env, info, 2);
  std::string name = getString(env, a[0], "name");
  std::string overload = a.size() > 1 && typeOf(env, a[1]) == napi_string ? getString(env, a[1], "overload") : "";
  return boolean(env, c10::Dispatcher::singleton().findSchema({name, overload}).has_value());
  M6_CATCH(env)
}

}  // namespace

void registerOps(napi_env env, napi_value exports) {
  exportFn(env, exports, "opHandle", OpHandle);
  exportFn(env, exports, "call", Call);
  exportFn(env, exports, "callAsync", CallAsync);
  exportFn(env, exports, "hasOp", HasOp);
}

}  // namespace m6
