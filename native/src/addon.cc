// m6's native addon: tensor handles in a table plus one boxed call into libtorch's dispatcher.
#include "common.h"

static napi_value Init(napi_env env, napi_value exports) {
  m6::registerTable(env, exports);
  m6::registerOps(env, exports);
  m6::registerRuntime(env, exports);
  m6::registerStorage(env, exports);
  m6::registerDistributed(env, exports);
  m6::registerProfiler(env, exports);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
