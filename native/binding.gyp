{
  # Built by scripts/build-native.mjs; scripts/find-libtorch.mjs says where libtorch is (cached in M6_LIBTORCH_FOUND).
  # c10d (src/distributed.cc): find-libtorch.mjs's c10d-defines turn on the Gloo backend when Gloo's headers are
  # present (Debian: libgloo-dev) and NCCL when the libtorch has CUDA; without them the file builds a stub whose
  # initProcessGroup says which package is missing, and the rest of the addon is unchanged.
  "targets": [
    {
      "target_name": "m6_native",
      "sources": ["src/addon.cc", "src/tensor_table.cc", "src/ops.cc", "src/runtime.cc", "src/storage.cc", "src/distributed.cc", "src/profiler.cc"],
      "include_dirs": ["<!@(node ../scripts/find-libtorch.mjs includes)", "<!@(node ../scripts/find-libtorch.mjs c10d-includes)"],
      "defines": ["<!@(node ../scripts/find-libtorch.mjs c10d-defines)"],
      "cflags!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++14", "-std=gnu++17"],
      "cflags_cc": ["-std=c++17", "-O2", "-DNDEBUG", "-fexceptions", "-frtti", "-Wno-deprecated-declarations", "-Wno-unused-parameter",
                    "-D_GLIBCXX_USE_CXX11_ABI=<!(node ../scripts/find-libtorch.mjs abi)"],
      "ldflags": ["-L<!(node ../scripts/find-libtorch.mjs libdir)", "-Wl,-rpath,<!(node ../scripts/find-libtorch.mjs libdir)", "-Wl,--no-as-needed"],
      "libraries": ["<!@(node ../scripts/find-libtorch.mjs libs)", "-ldl"]
    }
  ]
}
