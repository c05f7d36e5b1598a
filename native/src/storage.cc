// Zero-copy loading of safetensors files: the file is mapped copy-on-write and each tensor is a view
// of the mapping (at::from_blob with a deleter), so loading a checkpoint costs page faults, not copies.
// The mapping lives until the last tensor that views it is freed.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cerrno>
#include <cstring>
#include <memory>
#include "common.h"

namespace m6 {
namespace {

struct Mapping {
  void* base = MAP_FAILED;
  size_t length = 0;
  ~Mapping() { if (base != MAP_FAILED) munmap(base, length); }
};

// mapTensors(path, entries: [[dtype, shape, begin, end], ...], dataOffset) -> ids
napi_value MapTensors(napi_env env, napi_callback_info info) {
  M6_TRY
  auto a = args(env, info, 3);
  std::string path = getString(env, a[0], "path");
  int64_t dataOffset = getInt(env, a[2], "dataOffset");
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw JsError(path + ": " + std::strerror(errno));
  struct stat st{};
  fstat(fd, &st);
  auto map = std::make_shared<Mapping>();
  map->length = static_cast<size_t>(st.st_size);
  if (map->length) map->base = mmap(nullptr, map->length, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  close(fd);
  if (map->length && map->base == MAP_FAILED) throw JsError(path + ": mmap failed: " + std::strerror(errno));
  uint32_t n = arrayLength(env, a[1]);
  std::vector<at::Tensor> tensors;
  for (uint32_t i = 0; i < n; i++) {
    napi_value e = element(env, a[1], i);
    auto dtype = static_cast<at::ScalarType>(getInt(env, element(env, e, 0), "dtype"));
    auto shape = getIntList(env, element(env, e, 1), "shape");
    int64_t begin = getInt(env, element(env, e, 2), "begin") + dataOffset;
    int64_t end = getInt(env, element(env, e, 3), "end") + dataOffset;
    if (begin < dataOffset || end < begin || static_cast<size_t>(end) > map->length)
      throw JsError(path + ": tensor " + std::to_string(i) + " has data offsets outside the file");
    auto opts = at::TensorOptions().dtype(dtype);
    int64_t numel = 1;
    for (auto s : shape) numel *= s;
    if (numel * static_cast<int64_t>(c10::elementSize(dtype)) != end - begin)
      throw JsError(path + ": tensor " + std::to_string(i) + " has " + std::to_string(end - begin) + " bytes, its shape and dtype need " +
                    std::to_string(numel * c10::elementSize(dtype)));
    char* ptr = static_cast<char*>(map->base) + begin;
    bool aligned = reinterpret_cast<uintptr_t>(ptr) % c10::elementSize(dtype) == 0;
    if (aligned) {
      std::shared_ptr<Mapping> keep = map;
      tensors.push_back(at::from_blob(ptr, shape, [keep](void*) mutable { keep.reset(); }, opts));
    } else {
      // The format does not promise alignment; an unaligned tensor is copied instead.
      at::Tensor t = at::empty(shape, opts);
      if (numel) std::memcpy(t.data_ptr(), ptr, end - begin);
      tensors.push_back(t);
    }
  }
  napi_value r = array(env, tensors.size());
  for (size_t i = 0; i < tensors.size(); i++) setElement(env, r, i, number(env, insert(env, tensors[i])));
  return r;
  M6_CATCH(env)
}

// dataPtr(id) -> address as a number: lets tests check that a loaded tensor really views the mapping.
napi_value DataPtr(napi_env env, napi_callback_info info) {
  M6_TRY
  auto a = args(env, info, 1);
  return number(env, static_cast<double>(reinterpret_cast<uintptr_t>(get(env, a[0]).data_ptr())));
  M6_CATCH(env)
}

}  // namespace

void registerStorage(napi_env env, napi_value exports) {
  exportFn(env, exports, "mapTensors", MapTensors);
  exportFn(env, exports, "dataPtr", DataPtr);
}

}  // namespace m6
