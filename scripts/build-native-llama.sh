#!/usr/bin/env bash
# Builds llama.cpp's own llama-bench and llama-server (CPU) from the exact source node-llama-cpp 3.21.1 ships
# (node_modules/node-llama-cpp/llama/gitRelease.bundle), as the native reference for `npm run bench`.
# The build lives outside the repository (default ~/.cache/llmos/llama-native) and is never committed.
# Takes 10-20 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${LLMOS_NATIVE_DIR:-$HOME/.cache/llmos/llama-native}"
BUNDLE="node_modules/node-llama-cpp/llama/gitRelease.bundle"
RELEASE=$(node -e 'console.log(require("./node_modules/node-llama-cpp/llama/binariesGithubRelease.json").release)')
[ -f "$BUNDLE" ] || { echo "missing $BUNDLE: run npm ci first" >&2; exit 1; }
command -v cmake >/dev/null || { echo "cmake is required (apt-get install cmake)" >&2; exit 1; }
if [ -x "$OUT/bin/llama-bench" ] && [ -x "$OUT/bin/llama-server" ] && [ "$(cat "$OUT/RELEASE" 2>/dev/null)" = "$RELEASE" ]; then
  echo "native llama.cpp $RELEASE already built in $OUT"; exit 0
fi
mkdir -p "$OUT"
SRC="$OUT/src"
rm -rf "$SRC"
git clone --quiet "$BUNDLE" "$SRC"
(cd "$SRC" && git checkout --quiet "$RELEASE" 2>/dev/null || true)
cmake -S "$SRC" -B "$OUT/build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DLLAMA_CURL=OFF -DBUILD_SHARED_LIBS=OFF \
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=ON >/dev/null
cmake --build "$OUT/build" --config Release -j "$(nproc)" --target llama-bench llama-server
mkdir -p "$OUT/bin"
cp "$OUT/build/bin/llama-bench" "$OUT/build/bin/llama-server" "$OUT/bin/"
echo "$RELEASE" > "$OUT/RELEASE"
echo "built $OUT/bin/llama-bench and llama-server ($RELEASE)"
