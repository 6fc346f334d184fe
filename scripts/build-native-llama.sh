#!/usr/bin/env bash
# Builds llama.cpp's own llama-bench, llama-server, llama-quantize and llama-perplexity (CPU) from the exact source
# node-llama-cpp 3.21.1 ships (node_modules/node-llama-cpp/llama/gitRelease.bundle), as the native reference for
# `npm run bench` (speed; and quantized files byte for byte, perplexity within 1%).
# Also links a second llama-bench and llama-server against the prebuilt libllama/libggml that node-llama-cpp ships (and llmos
# loads), in $OUT/prebuilt: the same program on both builds of the library tells library speed from llmos's own.
# The build lives outside the repository (default ~/.cache/llmos/llama-native) and is never committed.
# Takes 10-20 minutes on 2 cores (more with other load).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${LLMOS_NATIVE_DIR:-$HOME/.cache/llmos/llama-native}"
BUNDLE="node_modules/node-llama-cpp/llama/gitRelease.bundle"
RELEASE=$(node -e 'console.log(require("./node_modules/node-llama-cpp/llama/binariesGithubRelease.json").release)')
[ -f "$BUNDLE" ] || { echo "missing $BUNDLE: run npm ci first" >&2; exit 1; }
command -v cmake >/dev/null || { echo "cmake is required (apt-get install cmake)" >&2; exit 1; }
PREBUILT_LIBS="node_modules/@node-llama-cpp/linux-x64/bins/linux-x64"

# llama-bench's objects from the native build, linked against the prebuilt shared libraries.
link_prebuilt() {
  [ -d "$PREBUILT_LIBS" ] || { echo "no prebuilt libraries in $PREBUILT_LIBS: skipping the prebuilt llama-bench" >&2; return 0; }
  local B="$OUT/build" P="$OUT/prebuilt"
  rm -rf "$P" && mkdir -p "$P"
  cp "$PREBUILT_LIBS"/*.so "$P/"
  (cd "$P" && ln -sf libllama.v*.so libllama.so && ln -sf libggml.v*.so libggml.so)
  c++ -O3 "$B/tools/llama-bench/CMakeFiles/llama-bench.dir/main.cpp.o" -o "$P/llama-bench" \
    "$B/tools/llama-bench/libllama-bench-impl.a" "$B/common/libllama-common.a" "$B/common/libllama-common-base.a" \
    "$B/vendor/cpp-httplib/libcpp-httplib.a" -lssl -lcrypto -L"$P" -lllama -lggml -lggml-base -ldl -lm -lpthread \
    -Wl,-rpath,'$ORIGIN'
  local S="$B/tools/server"
  c++ -O3 "$S/CMakeFiles/llama-server.dir/main.cpp.o" -o "$P/llama-server" \
    "$S/libllama-server-impl.a" "$S/libserver-context.a" "$B/common/libllama-common.a" "$B/common/libllama-common-base.a" \
    "$B/tools/mtmd/libmtmd.a" "$B/vendor/hash/libvendor-hash.a" "$B/tools/ui/libllama-ui.a" "$B/vendor/cpp-httplib/libcpp-httplib.a" \
    -lssl -lcrypto -L"$P" -lllama -lggml -lggml-base -ldl -lm -lpthread -Wl,-rpath,'$ORIGIN'
  echo "linked $P/llama-bench and llama-server against node-llama-cpp's prebuilt libraries"
}

TOOLS="llama-bench llama-server llama-quantize llama-perplexity"
built() { for t in $TOOLS; do [ -x "$OUT/bin/$t" ] || return 1; done; }
if built && [ "$(cat "$OUT/RELEASE" 2>/dev/null)" = "$RELEASE" ]; then
  echo "native llama.cpp $RELEASE already built in $OUT"
  [ -x "$OUT/prebuilt/llama-bench" ] && [ -x "$OUT/prebuilt/llama-server" ] || link_prebuilt
  exit 0
fi
mkdir -p "$OUT"
SRC="$OUT/src"
rm -rf "$SRC"
git clone --quiet "$BUNDLE" "$SRC"
(cd "$SRC" && git checkout --quiet "$RELEASE" 2>/dev/null || true)
cmake -S "$SRC" -B "$OUT/build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DLLAMA_CURL=OFF -DBUILD_SHARED_LIBS=OFF \
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=ON >/dev/null
cmake --build "$OUT/build" --config Release -j "$(nproc)" --target $TOOLS
mkdir -p "$OUT/bin"
for t in $TOOLS; do cp "$OUT/build/bin/$t" "$OUT/bin/"; done
echo "$RELEASE" > "$OUT/RELEASE"
echo "built $TOOLS in $OUT/bin ($RELEASE)"
link_prebuilt

# llmos's own CPU backend built here (what `llmos build-cpu-backend` makes), for the benchmark's llmos figures.
if [ ! -f "$HOME/.cache/llmos/ggml-cpu/llmos-cpu-backend.json" ]; then
  npm run build --silent
  node packages/cli/bin/llmos.js build-cpu-backend --dir "$HOME/.cache/llmos/ggml-cpu"
fi
