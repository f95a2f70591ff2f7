#!/usr/bin/env bash
# Which steps leave the process decoding single tokens more slowly, on the GPU
# machine: enginebench -steps (decode loops with and without logits, prompts,
# switches to a second context: see its -steps flag) for each model and each of STEPS
# (space-separated sequences, each run in a fresh process), as is and with
# each of VARIANTS (space-separated: NAME=VALUE environments, or enginebench
# flags, several joined by '+': -threads=1+-embd-gpu). ALT_CMAKE_FLAGS
# builds a second backend with those ggml options (-DGGML_CUDA_NO_VMM=ON, say;
# the stage must carry the sources) and runs the sequences on it as well,
# as variant "alt". The GPU's clocks, power and temperature are logged
# beside (clocks.csv).
#   qa/gpu/steps.sh [STAGE] [RESULTS]
set -euo pipefail
stage=$(cd "${1:-build/gpu-stage}" && pwd)
out=${2:-${OUT:-/tmp/kwyre-gpu-results}}
work=${KWYRE_GPU_WORK:-$PWD/build/gpu-work}
results=$work/results
models=${MODELS:-8b-q4_0 1b-q4_k_m}
sequences=${STEPS:-L,L,L,L,L,L L,L,P512,L,P2,L,L L,P512,L,P2,L,S,L,S,L N,L,P512,N,L,P2,N,L}
. "$stage/prepare.sh"

backends=("$work/lib/ollama")
if [ -n "${ALT_CMAKE_FLAGS:-}" ]; then
  CUDA_ARCHS=${CUDA_ARCHS:-90} CUDA_WORK="$work/alt-cuda" CUDA_CMAKE_FLAGS="$ALT_CMAKE_FLAGS" \
    "$stage/build-cuda.sh" "$stage/src" "$work/alt" 2>&1 | tail -1
  backends+=("$work/alt/lib/ollama")
fi

nvidia-smi --query-gpu=timestamp,clocks.sm,clocks.mem,power.draw,temperature.gpu,clocks_event_reasons.active \
  --format=csv -lms "${SMI_MS:-1000}" >"$results/clocks.csv" &
smi=$!
trap 'kill $smi 2>/dev/null || true' EXIT
for m in $models; do
  gguf=$(model "$m")
  for v in default ${VARIANTS:-} ${ALT_CMAKE_FLAGS:+alt}; do
    for steps in $sequences; do
      echo "== $m $v $steps $(date +%T.%N)"
      envs=() args=() lib=${backends[0]}
      case $v in
        default) ;;
        alt) lib=${backends[1]} envs=("LD_LIBRARY_PATH=$lib") ;;
        -*) IFS=+ read -ra args <<<"$v" ;;
        *) envs=("$v") ;;
      esac
      env "${envs[@]}" "$work/bin/enginebench" "${args[@]}" -model "$gguf" -backend-dir "$lib" -prompt 512 \
        -want-backend CUDA -gen "${GEN:-128}" -steps "$steps" 2>>"$results/steps.log" | grep -E '"step_|"name":"model"' |
        sed "s/^{/{\"model\":\"$m\",\"variant\":\"$v\",/" | tee -a "$results/steps.jsonl" |
        python3 -c 'import sys,json,datetime
for l in sys.stdin:
    d=json.loads(l)
    if d["name"] == "model":
        print("layers on the GPU: %d, token embedding on the GPU: %s" % (d["layers_on_gpu"], d.get("embd_on_gpu")))
        continue
    print(datetime.datetime.now().strftime("%T.%f"), d["name"], "%.1f tok/s, decode %.0f us, wait %.0f us" % (d["tokens_per_s"], d["decode_us"], d["wait_us"]) if "tokens" in d else "%.1f ms" % d["ms"])'
    done
  done
done
mkdir -p "$out" && cp "$results/steps.jsonl" "$results/clocks.csv" "$out/"
