#!/usr/bin/env bash
# Prepares build/gpu-stage on the build machine for a GPU machine that has CUDA but no Go:
# the programs (stripped, to stay small), the ggml sources for the CUDA backend, the scripts.
set -euo pipefail
cd "$(dirname "$0")/../.."
eval "$(make -s env)"
out=build/gpu-stage
rm -rf "$out"
mkdir -p "$out/bin" "$out/src/ml/backend/ggml"
go build -ldflags='-s -w' -o "$out/bin/kwyre-inference" ./services/inference/cmd/kwyre-inference
go build -ldflags='-s -w' -o "$out/bin/enginebench" ./qa/gpu/enginebench
go build -ldflags='-s -w' -o "$out/bin/kwyre-testmodel" ./tools/kwyre-testmodel
go build -ldflags='-s -w' -o "$out/bin/gpubench" ./qa/gpu/gpubench
# STAGE_B=upstream: also the engine and the service built against the binding
# module as released (no -modfile), as bin/*-upstream for qa/gpu/ab.sh.
if [ "${STAGE_B:-}" = upstream ]; then
  for p in enginebench=./qa/gpu/enginebench kwyre-inference=./services/inference/cmd/kwyre-inference; do
    GOFLAGS='-buildvcs=false -trimpath' go build -ldflags='-s -w' -o "$out/bin/${p%%=*}-upstream" "${p#*=}"
  done
fi
gzip -f "$out"/bin/* # a device run carries at most 64 MiB; prepare.sh unpacks them

# The ggml sources the CUDA build reads, and the patches it applies to them.
src=$(go list -m -f '{{.Dir}}' github.com/ollama/ollama)
cp "$src/CMakeLists.txt" "$src/CMakePresets.json" "$out/src/"
cp -r "$src/ml/backend/ggml/ggml" "$out/src/ml/backend/ggml/"
chmod -R u+w "$out/src"
# Backends the CUDA build never reads.
rm -rf "$out"/src/ml/backend/ggml/ggml/src/{ggml-metal,ggml-vulkan,ggml-sycl,ggml-opencl,ggml-cann,ggml-hexagon,ggml-musa,ggml-zdnn,ggml-webgpu}
cp -r services/inference/cuda-patches "$out/"
cp qa/gpu/build-cuda.sh qa/gpu/prepare.sh qa/gpu/bench.sh qa/gpu/ab.sh qa/gpu/replies.sh qa/gpu/sweep.sh qa/gpu/profile.sh qa/gpu/steps.sh qa/gpu/cudashim.c "$out/"

# A backend fetched from an earlier GPU run (prepare.sh hands it back in parts;
# copy them to build/) saves the ~3-minute build. The sources then travel
# packed (0.5 MB instead of 6), for a second, differently configured build
# (steps.sh ALT_CMAKE_FLAGS); prepare.sh unpacks them. A prebuilt backend built
# with other patches than the tree's is left out.
if compgen -G 'build/cuda-backend.tar.xz.part-*' >/dev/null; then
  cat build/cuda-backend.tar.xz.part-* >"$out/cuda-backend.tar.xz"
  want=$(cd services/inference/cuda-patches && sha256sum -- *.patch)
  have=$(xz -dc "$out/cuda-backend.tar.xz" | tar -xOf - ./cuda-patches.sha256 2>/dev/null || true)
  if [ "$have" = "$want" ]; then
    tar -C "$out" -cf - src | xz -T0 -6 >"$out/src.tar.xz"
    rm -rf "$out/src"
  else
    echo "stage: build/cuda-backend.tar.xz.part-* has other patches than services/inference/cuda-patches: left out, the GPU machine builds the backend" >&2
    rm "$out/cuda-backend.tar.xz"
  fi
fi
du -sh "$out"
