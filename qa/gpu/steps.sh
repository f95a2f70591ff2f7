#!/usr/bin/env bash
# Which steps leave the process decoding single tokens more slowly, on the GPU
# machine: enginebench -steps (decode loops with and without logits, prompts,
# switches to a second context: see its -steps flag) for each model and each of STEPS
# (space-separated sequences, each run in a fresh process), as is and with
# each of VARIANTS (space-separated NAME=VALUE environments). The GPU's
# clocks, power and temperature are logged beside (clocks.csv).
#   qa/gpu/steps.sh [STAGE] [RESULTS]
set -euo pipefail
stage=$(cd "${1:-build/gpu-stage}" && pwd)
out=${2:-${OUT:-/tmp/kwyre-gpu-results}}
work=${KWYRE_GPU_WORK:-$PWD/build/gpu-work}
results=$work/results
models=${MODELS:-8b-q4_0 1b-q4_k_m}
sequences=${STEPS:-L,L,L,L,L,L L,L,P512,L,P2,L,L L,P512,L,P2,L,S,L,S,L N,L,P512,N,L,P2,N,L}
. "$stage/prepare.sh"

nvidia-smi --query-gpu=timestamp,clocks.sm,clocks.mem,power.draw,temperature.gpu,clocks_event_reasons.active \
  --format=csv -lms 100 >"$results/clocks.csv" &
smi=$!
trap 'kill $smi 2>/dev/null || true' EXIT
for m in $models; do
  gguf=$(model "$m")
  for v in default ${VARIANTS:-}; do
    for steps in $sequences; do
      echo "== $m $v $steps $(date +%T.%N)"
      envs=()
      [ "$v" != default ] && envs=("$v")
      env "${envs[@]}" "$work/bin/enginebench" -model "$gguf" -backend-dir "$work/lib/ollama" -prompt 512 \
        -want-backend CUDA -gen "${GEN:-128}" -steps "$steps" 2>>"$results/steps.log" | grep '"step_' |
        sed "s/^{/{\"model\":\"$m\",\"variant\":\"$v\",/" | tee -a "$results/steps.jsonl" |
        python3 -c 'import sys,json,datetime
for l in sys.stdin:
    d=json.loads(l)
    print(datetime.datetime.now().strftime("%T.%f"), d["name"], "%.1f tok/s, decode %.0f us, wait %.0f us" % (d["tokens_per_s"], d["decode_us"], d["wait_us"]) if "tokens" in d else "%.1f ms" % d["ms"])'
    done
  done
done
mkdir -p "$out" && cp "$results/steps.jsonl" "$results/clocks.csv" "$out/"
