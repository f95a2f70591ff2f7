#!/usr/bin/env bash
# Builds ggml's CUDA backend from the pinned binding module's own sources (CMake + nvcc).
#   qa/gpu/build-cuda.sh [SRC] [OUT]
# SRC: the github.com/ollama/ollama module folder (default: from `go list`), or a staged copy
#      holding CMakeLists.txt, CMakePresets.json and ml/backend/ggml/ggml.
# OUT: where lib/ollama/{libggml-cuda.so,libggml-base.so} go (default: build/gpu).
# CUDA_ARCHS picks the architectures: default Turing through Hopper; CUDA_CMAKE_FLAGS adds
# ggml build options (-DGGML_CUDA_NO_VMM=ON, say).
set -euo pipefail

src=${1:-$(go list -m -f '{{.Dir}}' github.com/ollama/ollama)}
out=${2:-build/gpu}
archs=${CUDA_ARCHS:-75;80;86;89;90}
command -v nvcc >/dev/null || { echo "build-cuda: nvcc not found: build the CUDA backend on a machine with the CUDA toolkit" >&2; exit 1; }
command -v cmake >/dev/null || { echo "build-cuda: cmake not found" >&2; exit 1; }

work=${CUDA_WORK:-$(mktemp -d)}
mkdir -p "$work/src/ml/backend/ggml"
cp "$src/CMakeLists.txt" "$src/CMakePresets.json" "$work/src/"
rm -rf "$work/src/ml/backend/ggml/ggml"
cp -r "$src/ml/backend/ggml/ggml" "$work/src/ml/backend/ggml/"
chmod -R u+w "$work/src"

gen=()
command -v ninja >/dev/null && gen=(-G Ninja)
start=$(date +%s)
cmake -S "$work/src" -B "$work/build" "${gen[@]}" \
  -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CUDA_ARCHITECTURES="$archs" \
  -DCMAKE_BUILD_RPATH_USE_ORIGIN=ON \
  -DCMAKE_DISABLE_FIND_PACKAGE_Vulkan=ON ${CUDA_CMAKE_FLAGS:-} >"$work/cmake.log"
cmake --build "$work/build" --target ggml-cuda -j "$(nproc)" >"$work/build.log" 2>&1 || {
  tail -40 "$work/build.log" >&2; exit 1; }
mkdir -p "$out/lib/ollama"
cp -P "$work"/build/lib/ollama/libggml-cuda.so "$work"/build/lib/ollama/libggml-base.so* "$out/lib/ollama/"
echo "build-cuda: archs $archs, $(( $(date +%s) - start )) s → $out/lib/ollama"
ls -l "$out/lib/ollama"
