{
  "targets": [
    {
      "target_name": "udp_engine",
      "sources": ["src/media/native/udp-engine.cc"],
      "cflags_cc": ["-O2", "-std=c++17", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "cflags_cc!": ["-fno-exceptions"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
