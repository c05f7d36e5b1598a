// Shared pieces of the addon: N-API helpers, the error bridge, and the tensor table.
#pragma once
#include <node_api.h>
#include <string>
#include <vector>
#include "compat.h"

// Every exported function body runs inside M6_TRY/M6_CATCH (tch-rs's PROTECT): no C++ exception crosses
// into Node. A c10::Error keeps libtorch's message without the C++ backtrace.
#define M6_TRY try {
#define M6_CATCH(env)                                                              \
  }                                                                                \
  catch (const c10::Error& e) { m6::throwJs(env, e.what_without_backtrace()); }    \
  catch (const std::exception& e) { m6::throwJs(env, e.what()); }                  \
  catch (...) { m6::throwJs(env, "unknown native error"); }                        \
  return nullptr;

namespace m6 {

struct JsError : std::runtime_error { using std::runtime_error::runtime_error; };

void throwJs(napi_env env, const std::string& msg);

// --- N-API helpers (throw JsError; converted by M6_CATCH) ---
std::vector<napi_value> args(napi_env env, napi_callback_info info, size_t expected);
double getNumber(napi_env env, napi_value v, const char* what);
int64_t getInt(napi_env env, napi_value v, const char* what);
bool getBool(napi_env env, napi_value v, const char* what);
std::string getString(napi_env env, napi_value v, const char* what);
napi_valuetype typeOf(napi_env env, napi_value v);
bool isArray(napi_env env, napi_value v);
uint32_t arrayLength(napi_env env, napi_value v);
napi_value element(napi_env env, napi_value arr, uint32_t i);
std::vector<int64_t> getIntList(napi_env env, napi_value v, const char* what);
napi_value number(napi_env env, double d);
napi_value boolean(napi_env env, bool b);
napi_value string(napi_env env, const std::string& s);
napi_value undefined(napi_env env);
napi_value null(napi_env env);
napi_value array(napi_env env, size_t n);
void setElement(napi_env env, napi_value arr, uint32_t i, napi_value v);
void setNamed(napi_env env, napi_value obj, const char* key, napi_value v);
napi_value object(napi_env env);

// --- the tensor table: JS holds plain integer ids; the table owns the at::Tensor. ---
// Why a table: wrapping each tensor as a finalizable N-API object costs several µs per op and leaves
// native memory to the GC's whims; an integer id costs nothing, and scopes free it deterministically.
uint32_t insert(napi_env env, at::Tensor t);
const at::Tensor& get(napi_env env, napi_value id);
const at::Tensor& getById(uint32_t id);
bool validId(uint32_t id);
void release(napi_env env, uint32_t id);
void reportToGc(napi_env env, uint32_t id);
size_t liveCount();
int64_t liveBytes();
std::string describe(const at::Tensor& t);  // "[2, 3] float32 cpu"

void registerTable(napi_env env, napi_value exports);
void registerOps(napi_env env, napi_value exports);
void registerRuntime(napi_env env, napi_value exports);
void registerStorage(napi_env env, napi_value exports);
void registerDistributed(napi_env env, napi_value exports);
void registerProfiler(napi_env env, napi_value exports);
void exportFn(napi_env env, napi_value exports, const char* name, napi_callback cb);

}  // namespace m6
