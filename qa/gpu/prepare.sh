# Sourced by bench.sh and profile.sh on the GPU machine: unpacks the staged
# programs into $work/bin, builds the CUDA backend into $work/lib/ollama
# unless it is there (or a prebuilt one was staged), and defines
# `model NAME` (8b-q4_0, 1b-q4_k_m, ...), which generates that model once
# and prints its path. Needs $stage, $work, $results and $out (where
# files handed back from a device run go).
mkdir -p "$work/bin" "$work/models" "$results" "$out"
if [ ! -d "$stage/src" ] && [ -f "$stage/src.tar.xz" ]; then
  tar -C "$stage" -xJf "$stage/src.tar.xz"
fi
for b in "$stage"/bin/*; do
  case $b in
    *.gz) gunzip -c "$b" >"$work/bin/$(basename "$b" .gz)" ;;
    *) cp "$b" "$work/bin/" ;;
  esac
done
chmod +x "$work"/bin/*
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$results/gpu.txt"

if [ ! -f "$work/lib/ollama/libggml-cuda.so" ] && [ -f "$stage/cuda-backend.tar.xz" ]; then
  mkdir -p "$work/lib/ollama" && tar -C "$work/lib/ollama" -xJf "$stage/cuda-backend.tar.xz"
  echo "prepare: CUDA backend from the stage"
fi
if [ ! -f "$work/lib/ollama/libggml-cuda.so" ]; then
  CUDA_ARCHS=${CUDA_ARCHS:-90} CUDA_WORK="$work/cuda" "$stage/build-cuda.sh" "$stage/src" "$work" 2>&1 | tail -3
  # HANDBACK_BACKEND=1: handed back in parts under the 16 MB a returned file
  # may have, so a later run can skip the build (stage.sh joins them).
  if [ -n "${HANDBACK_BACKEND:-}" ]; then
    tar -C "$work/lib/ollama" -cf - . | xz -T0 -6 | split -b 15M - "$out/cuda-backend.tar.xz.part-"
    ls -l "$out"/cuda-backend.tar.xz.part-*
  fi
fi

# The backend finds libggml-base.so.0 beside it, as the image's LD_LIBRARY_PATH does.
export LD_LIBRARY_PATH="$work/lib/ollama${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

model() {
  local m=$1 preset typ gguf s
  case $m in
    8b-*) preset=llama3-8b ;;
    1b-*) preset=llama3.2-1b ;;
    *) echo "model: unknown $m" >&2; return 1 ;;
  esac
  typ=${m#*-}
  gguf="$work/models/$m.gguf"
  if [ ! -f "$gguf" ]; then
    s=$SECONDS
    "$work/bin/kwyre-testmodel" -preset "$preset" -type "$typ" -seed 1 -o "$gguf" >&2
    echo "$m: generated $(du -h "$gguf" | cut -f1) in $((SECONDS - s)) s" >&2
  fi
  echo "$gguf"
}
