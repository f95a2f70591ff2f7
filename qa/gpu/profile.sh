#!/usr/bin/env bash
# Where single-token decode time goes, on the GPU machine: enginebench -profile
# (time in llama_decode, waiting for the device, sampling) for each model under
# CPU thread count (THREADS, twice, interleaved), with VARIANTS=1 also flash
# attention off, CUDA graphs off and graph reuse off, and any extra
# enginebench builds staged as bin/enginebench-*; then bare decode loops with
# a prompt (2, 64, 512 tokens) evaluated between every third.
#   qa/gpu/profile.sh [STAGE] [RESULTS]
set -euo pipefail
stage=$(cd "${1:-build/gpu-stage}" && pwd)
out=${2:-${OUT:-/tmp/kwyre-gpu-results}}
work=${KWYRE_GPU_WORK:-$PWD/build/gpu-work}
results=$work/results # everything; $out gets the few files a device run hands back
models=${MODELS:-8b-q4_0 1b-q4_k_m}
. "$stage/prepare.sh"

run() { # label, env/args...
  local label=$1; shift
  echo "== $m $label"
  env "$@" -model "$gguf" -backend-dir "$work/lib/ollama" -profile -runs 2 2>>"$results/profile.log" |
    grep -E '"(engine|profile_raw|profile_sampled|kv_check)"' | sed "s/^{/{\"model\":\"$m\",\"variant\":\"$label\",/" |
    tee -a "$results/profile.jsonl"
}
for m in $models; do
  gguf=$(model "$m")
  eb="$work/bin/enginebench"
  for rep in 1 2; do
    for t in ${THREADS:-1 2 4 16}; do
      run "threads-$t" "$eb" -threads "$t"
    done
  done
  if [ -n "${VARIANTS:-}" ]; then
    run fa-off "$eb" -fa off
    run graphs-off GGML_CUDA_DISABLE_GRAPHS=1 "$eb"
    run reuse-off LLAMA_GRAPH_REUSE_DISABLE=1 "$eb"
  fi
  # Bare decode loops in one context, a prompt evaluated before every third:
  # the GPU time per token can rise after prompts and stay (steps.sh shows more).
  for p in 2 64 512; do
    echo "== $m series, a $p-token prompt before every third loop"
    "$eb" -model "$gguf" -backend-dir "$work/lib/ollama" -series 9 -series-prompt-every 3 -prompt "$p" \
      2>>"$results/profile.log" | grep series | sed "s/^{/{\"model\":\"$m\",\"variant\":\"series-prompt-$p\",/" |
      tee -a "$results/profile.jsonl"
  done
  for x in "$work"/bin/enginebench-*; do
    [ -x "$x" ] && run "${x##*/enginebench-}" "$x"
  done
done
mkdir -p "$out" && cp "$results/profile.jsonl" "$out/"
