#!/usr/bin/env bash
# Interleaved A/B of two builds of the programs, on the GPU machine: the
# staged bin/enginebench and bin/kwyre-inference (A) against
# bin/enginebench-$B and bin/kwyre-inference-$B (stage.sh with STAGE_B=upstream
# stages them built without services/inference/binding-patches). Each of
# ROUNDS rounds runs the engine alone (-profile: its decode, llama-bench's
# own loop in the same process, the prompt) and the HTTP API (gpubench, one
# session) for A, then B, then B, then A in the next round, so that drift
# over the run weighs on both. Prints mean figures per build and their ratio.
# B_ENV=NAME=VALUE instead compares the staged programs with and without that
# environment (B_ENV=GGML_CUDA_DISABLE_PDL=1: a backend switch).
#   qa/gpu/ab.sh [STAGE] [OUT]
set -euo pipefail
stage=$(cd "${1:-build/gpu-stage}" && pwd)
out=${2:-${OUT:-/tmp/kwyre-gpu-results}}
work=${KWYRE_GPU_WORK:-$PWD/build/gpu-work}
results=$work/results
models=${MODELS:-1b-q4_k_m 8b-q4_0}
rounds=${ROUNDS:-3}
other=${B:-upstream} # not $b: prepare.sh loops with it
benv=${B_ENV:-}
[ -z "$benv" ] || other=$benv
. "$stage/prepare.sh"
for p in enginebench kwyre-inference; do
  [ -n "$benv" ] || [ -x "$work/bin/$p-$other" ] || { echo "ab: $work/bin/$p-$other missing (stage.sh STAGE_B=$other)" >&2; exit 1; }
done

key="$work/api-key"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$key"
chmod 600 "$key"
jl="$out/ab.jsonl" # straight into OUT: a run cut short still hands back its rounds
: >"$jl"

tag() { sed "s/^{/{\"model\":\"$m\",\"build\":\"$1\",\"round\":$r,/" | tee -a "$jl"; }

one() { # build: A or B
  local sfx="" envs=()
  if [ "$1" = B ]; then
    if [ -n "$benv" ]; then envs=("$benv"); else sfx="-$other"; fi
  fi
  env "${envs[@]}" "$work/bin/enginebench$sfx" -model "$gguf" -backend-dir "$work/lib/ollama" -want-backend CUDA -profile -runs 2 \
    2>>"$results/ab.engine.log" | grep -E '"name":"(engine|profile_raw)"' | tag "$1"
  env "${envs[@]}" "$work/bin/kwyre-inference$sfx" -model "$gguf" -backend-dir "$work/lib/ollama" -gpu-layers auto \
    -ctx 4096 -listen 127.0.0.1:8000 -api-key-file "$key" >>"$results/ab.service.log" 2>&1 &
  local pid=$!
  for _ in $(seq 1 600); do
    curl -fsS http://127.0.0.1:8000/health 2>/dev/null | grep -q '"ready"' && break
    kill -0 $pid 2>/dev/null || { echo "ab: service died" >&2; tail -20 "$results/ab.service.log" >&2; exit 1; }
    sleep 0.2
  done
  "$work/bin/gpubench" -api-key-file "$key" -concurrency "" |
    grep -E '"name":"(prompt_512|decode|decode_sampled)"' | tag "$1"
  kill -TERM $pid
  wait $pid || true
}

for m in $models; do
  gguf=$(model "$m")
  for r in $(seq 1 "$rounds"); do
    if [ $((r % 2)) = 1 ]; then one A; one B; else one B; one A; fi
  done
done

python3 - "$jl" "$other" <<'EOF'
import json, sys, statistics as st
rows = [json.loads(l) for l in open(sys.argv[1])]
figs = [("engine", "tokens_per_s", "decode, engine alone"),
        ("profile_raw", "tokens_per_s", "decode, llama.cpp's own loop"),
        ("engine", "prompt_tokens_per_s", "prompt 512, engine alone"),
        ("decode", "tokens_per_s", "decode, HTTP greedy"),
        ("decode_sampled", "tokens_per_s", "decode, HTTP sampled"),
        ("prompt_512", "prompt_tokens_per_s", "prompt, HTTP to first chunk")]
print("| model | figure | A | B (%s) | A/B |" % sys.argv[2])
print("|---|---|---|---|---|")
for m in dict.fromkeys(r["model"] for r in rows):
    for name, key, label in figs:
        v = {x: [r[key] for r in rows if r["model"] == m and r["name"] == name and r["build"] == x and key in r] for x in "AB"}
        if not v["A"] or not v["B"]:
            continue
        a, bb = st.mean(v["A"]), st.mean(v["B"])
        print("| %s | %s | %s | %s | %.3f |" % (m, label, " / ".join("%.1f" % x for x in v["A"]),
              " / ".join("%.1f" % x for x in v["B"]), a / bb))
    hashes = {x: {r["reply_fnv64"] for r in rows if r["model"] == m and r["name"] == "engine" and r["build"] == x} for x in "AB"}
    print("| %s | greedy replies (engine) | %s | %s | %s |" % (m, ",".join(sorted(hashes["A"])), ",".join(sorted(hashes["B"])),
          "identical" if hashes["A"] == hashes["B"] and len(hashes["A"]) == 1 else "DIFFER"))
EOF

