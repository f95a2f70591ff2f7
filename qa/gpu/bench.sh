#!/usr/bin/env bash
# The whole GPU measurement, on a machine with an NVIDIA GPU and the CUDA toolkit:
# build the CUDA backend, generate 8B- and 1B-shaped models, run the engine-alone and the
# HTTP benchmarks, print one table. Input: the folder qa/gpu/stage.sh made.
# SERVICE_ARGS adds flags to the service's command line (-threads 1, say);
# SERVICE_BIN names another staged build of it to run.
#   qa/gpu/bench.sh [STAGE] [RESULTS]
set -euo pipefail
stage=$(cd "${1:-build/gpu-stage}" && pwd)
out=${2:-${OUT:-/tmp/kwyre-gpu-results}}
work=${KWYRE_GPU_WORK:-$PWD/build/gpu-work}
results=$work/results # everything; $out gets the few files a device run hands back
models=${MODELS:-8b-q4_0 8b-q4_k_m 1b-q4_k_m}
. "$stage/prepare.sh"

# The GPU's clocks, power and throttle reasons through the run, to tell a
# throttled card from a slower figure.
nvidia-smi --query-gpu=timestamp,clocks.sm,clocks.mem,power.draw,temperature.gpu,clocks_throttle_reasons.active \
  --format=csv -lms 1000 >"$results/clocks.csv" 2>/dev/null &
clocks=$!
trap 'kill $clocks 2>/dev/null || true' EXIT

key="$work/api-key"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$key"
chmod 600 "$key"

# serve MODEL LOG [gpubench flags] [service flags]: starts the service, runs
# gpubench against it (its one or two leading flags), stops the service.
serve() {
  local gguf=$1 log=$2 pid bflags=()
  shift 2
  while [ $# -gt 0 ] && { [ "$1" = -concurrency ] || [ "$1" = -only-concurrency ]; }; do
    if [ "$1" = -concurrency ]; then bflags+=("$1" "$2"); shift 2; else bflags+=("$1"); shift; fi
  done
  "$work/bin/${SERVICE_BIN:-kwyre-inference}" -model "$gguf" -backend-dir "$work/lib/ollama" -gpu-layers auto \
     -ctx 4096 -listen 127.0.0.1:8000 -api-key-file "$key" "$@" >"$log" 2>&1 &
  pid=$!
  for _ in $(seq 1 600); do
    curl -fsS http://127.0.0.1:8000/health 2>/dev/null | grep -q '"ready"' && break
    kill -0 $pid 2>/dev/null || { echo "service died"; tail -20 "$log"; break; }
    sleep 0.2
  done
  "$work/bin/gpubench" -api-key-file "$key" "${bflags[@]}" | tee -a "$jl" || true
  # What the service reports about the GPU, right after the load it carried.
  curl -fsS http://127.0.0.1:8000/health >"$log.health.json" || true
  curl -fsS -H "Authorization: Bearer $(cat "$key")" http://127.0.0.1:8000/audit >"$log.audit.json" || true
  curl -fsS -H "Authorization: Bearer $(cat "$key")" http://127.0.0.1:8000/metrics | grep '^kwyre_gpu' >"$log.gpu-metrics.txt" || true
  kill -TERM $pid; wait $pid || true
  grep -iE 'offload|model ready' "$log" | head -2
}

for m in $models; do
  gguf=$(model "$m")
  jl="$results/$m.jsonl"
  "$work/bin/enginebench" -model "$gguf" -backend-dir "$work/lib/ollama" -profile 2>"$results/$m.engine.log" | tee "$jl"
  # The backend's own default, without the concurrent streams the engine turns on.
  GGML_CUDA_GRAPH_OPT=0 "$work/bin/enginebench" -model "$gguf" -backend-dir "$work/lib/ollama" -runs 2 \
    2>>"$results/$m.engine.log" | grep '"engine"' | sed 's/"name":"engine"/"name":"engine_no_graph_opt"/' | tee -a "$jl"
  "$work/bin/enginebench" -model "$gguf" -backend-dir "$work/lib/ollama" -kv-check 2>>"$results/$m.engine.log" |
    grep '"kv_check"' | tee -a "$jl"
  # The service as the appliance starts it (its default 2 slots) for one
  # stream's figures, then with 16 slots for the concurrent sessions.
  serve "$gguf" "$results/$m.service.log" -concurrency "" ${SERVICE_ARGS:-}
  serve "$gguf" "$results/$m.service16.log" -only-concurrency -slots 16 ${SERVICE_ARGS:-}
done

echo
echo "GPU: $(cat "$results/gpu.txt"), $(date -u +%F)"
"$work/bin/gpubench" -table $(for m in $models; do echo "$results/$m.jsonl"; done) | tee "$results/table.md"
kill $clocks 2>/dev/null || true
mkdir -p "$out"
cp "$results/table.md" "$results/clocks.csv" "$out/"
for m in $models; do # the GPU as the service reported it
  cp "$results/$m.service.log.health.json" "$results/$m.service.log.gpu-metrics.txt" "$out/" 2>/dev/null || true
done
tar -C "$results" -czf "$out/results.tar.gz" .
