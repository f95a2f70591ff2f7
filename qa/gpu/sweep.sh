#!/usr/bin/env bash
# Prompt speed of the engine alone over prompt sizes, for each value of one
# environment variable (a backend switch), on the GPU machine. Values run
# interleaved, in turned order at each size, so drift weighs on all.
#   SWEEP_VAR=GGML_CUDA_PROMPT_CUBLAS SWEEP_VALUES="0 1" PROMPTS="64 256 512" qa/gpu/sweep.sh [STAGE] [OUT]
# An empty value in SWEEP_VALUES ("-") runs without the variable.
set -euo pipefail
stage=$(cd "${1:-build/gpu-stage}" && pwd)
out=${2:-${OUT:-/tmp/kwyre-gpu-results}}
work=${KWYRE_GPU_WORK:-$PWD/build/gpu-work}
results=$work/results
models=${MODELS:-8b-q4_0 8b-q4_k_m 1b-q4_k_m}
var=${SWEEP_VAR:?SWEEP_VAR names the variable}
values=(${SWEEP_VALUES:?SWEEP_VALUES lists its values})
prompts=${PROMPTS:-64 128 256 512}
. "$stage/prepare.sh"
jl="$out/sweep.jsonl"
: >"$jl"

for m in $models; do
  gguf=$(model "$m")
  turn=0
  for n in $prompts; do
    order=("${values[@]}")
    if [ $((turn % 2)) = 1 ]; then
      order=($(printf '%s\n' "${values[@]}" | tac))
    fi
    turn=$((turn + 1))
    for v in "${order[@]}"; do
      envs=()
      [ "$v" = - ] || envs=("$var=$v")
      env "${envs[@]}" "$work/bin/enginebench" -model "$gguf" -backend-dir "$work/lib/ollama" -want-backend CUDA \
        -prompt "$n" -gen 16 -runs 3 2>>"$results/sweep.log" | grep '"name":"engine"' |
        sed "s/^{/{\"model\":\"$m\",\"value\":\"$v\",/" | tee -a "$jl"
    done
  done
done

python3 - "$jl" "$var" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
vals = list(dict.fromkeys(r["value"] for r in rows))
print("| model | prompt tokens | " + " | ".join("%s=%s tok/s" % (sys.argv[2], v) for v in vals) + " |")
print("|---|---|" + "---|" * len(vals))
for m in dict.fromkeys(r["model"] for r in rows):
    for n in dict.fromkeys(r["prompt_tokens"] for r in rows if r["model"] == m):
        sel = {r["value"]: r for r in rows if r["model"] == m and r["prompt_tokens"] == n}
        cells = ["%.0f" % sel[v]["prompt_tokens_per_s"] if v in sel else "" for v in vals]
        print("| %s | %d | %s |" % (m, n, " | ".join(cells)))
EOF
