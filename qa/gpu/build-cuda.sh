#!/usr/bin/env bash
# Builds ggml's CUDA backend from the pinned binding module's own sources (CMake + nvcc).
#   qa/gpu/build-cuda.sh [SRC] [OUT]
# SRC: the github.com/ollama/ollama module folder (default: from `go list`), or a staged copy
#      holding CMakeLists.txt, CMakePresets.json and ml/backend/ggml/ggml.
# OUT: where lib/ollama/{libggml-cuda.so,libggml-base.so} go (default: build/gpu).
# CUDA_ARCHS picks the architectures: default Turing through Hopper; CUDA_CMAKE_FLAGS adds
# ggml build options (-DGGML_CUDA_NO_VMM=ON, say). Every *.patch in CUDA_PATCHES (default:
# services/inference/cuda-patches, or cuda-patches beside this script in a GPU stage) is
# applied to the copied sources first; a patch that does not apply stops the build.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

src=${1:-$(go list -m -f '{{.Dir}}' github.com/ollama/ollama)}
out=${2:-build/gpu}
archs=${CUDA_ARCHS:-75;80;86;89;90}
command -v nvcc >/dev/null || { echo "build-cuda: nvcc not found: build the CUDA backend on a machine with the CUDA toolkit" >&2; exit 1; }
command -v cmake >/dev/null || { echo "build-cuda: cmake not found" >&2; exit 1; }
patches=${CUDA_PATCHES:-}
if [ -z "$patches" ]; then
  for d in "$here/cuda-patches" "$here/../../services/inference/cuda-patches"; do
    if [ -d "$d" ]; then patches=$d; break; fi
  done
fi
[ -z "$patches" ] || patches=$(cd "$patches" && pwd) # patch -d changes folder before it reads -i

work=${CUDA_WORK:-$(mktemp -d)}
mkdir -p "$work/src/ml/backend/ggml"
cp "$src/CMakeLists.txt" "$src/CMakePresets.json" "$work/src/"
rm -rf "$work/src/ml/backend/ggml/ggml"
cp -r "$src/ml/backend/ggml/ggml" "$work/src/ml/backend/ggml/"
chmod -R u+w "$work/src"
applied=()
for p in ${patches:+"$patches"/*.patch}; do
  [ -e "$p" ] || continue
  command -v patch >/dev/null || { echo "build-cuda: patch not found (needed for $p)" >&2; exit 1; }
  patch -p1 --forward --fuzz=0 --quiet -d "$work/src" -i "$p" || { echo "build-cuda: $p does not apply to $src" >&2; exit 1; }
  applied+=("$(basename "$p")")
done

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
# Which patches this backend has (the image builder copies only libggml-*; stage.sh
# compares this with the patches of the tree before it reuses a prebuilt backend).
if [ ${#applied[@]} -gt 0 ]; then
  (cd "$patches" && sha256sum -- "${applied[@]}") >"$out/lib/ollama/cuda-patches.sha256"
else
  : >"$out/lib/ollama/cuda-patches.sha256"
fi
echo "build-cuda: archs $archs, patches: ${applied[*]:-none}, $(( $(date +%s) - start )) s → $out/lib/ollama"
ls -l "$out/lib/ollama"
