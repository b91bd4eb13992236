{
  # node-gyp fallback for machines without cmake, and the build prebuildify drives.
  # CPU backend only; the same sources as CMakeLists.txt (listed by scripts/gyp-sources.js).
  # Per-instruction-set kernels are static libraries with their own flags, picked at run time.
  "variables": {
    "qm_defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
    "qm_cflags": ["-O3", "-std=c++17", "-fexceptions", "-fno-math-errno", "-Wno-unused-parameter"]
  },
  "target_defaults": {
    "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")", "native"],
    "defines": ["<@(qm_defines)"],
    "cflags!": ["-fno-exceptions"],
    "cflags_cc!": ["-fno-exceptions", "-std=gnu++14", "-std=gnu++17"],
    "cflags_cc": ["<@(qm_cflags)"]
  },
  "conditions": [
    ["target_arch=='x64'", {
      "targets": [
        {
          "target_name": "qm_avx2",
          "type": "static_library",
          "sources": ["<!@(node scripts/gyp-sources.js avx2)"],
          "cflags_cc": ["-mavx2", "-mfma", "-mf16c", "-fPIC"]
        },
        {
          "target_name": "qm_avx512",
          "type": "static_library",
          "sources": ["<!@(node scripts/gyp-sources.js avx512)"],
          "cflags_cc": ["-mavx2", "-mfma", "-mf16c", "-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mavx512vnni", "-fPIC"]
        },
        {
          "target_name": "quantmoe",
          "sources": ["<!@(node scripts/gyp-sources.js core)"],
          "defines": ["QM_HAVE_X86_KERNELS"],
          "dependencies": ["qm_avx2", "qm_avx512"]
        }
      ]
    }, {
      "targets": [
        {
          "target_name": "quantmoe",
          "sources": ["<!@(node scripts/gyp-sources.js core)"]
        }
      ]
    }]
  ]
}
