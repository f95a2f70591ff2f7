#!/usr/bin/env bash
# The patches must keep the arithmetic: on the GPU machine, the greedy reply
# after a prompt (enginebench -reply: the prompt's batched kernels, then the
# single-token ones) for each model, prompt length and variant, and whether the
# variants' replies are identical. A variant is "default" (the staged programs
# as they are), NAME=VALUE (an environment setting), or "upstream" /
# "upstream+NAME=VALUE" (bin/enginebench-upstream, staged by
# stage.sh STAGE_B=upstream: the binding module as released).
#   qa/gpu/replies.sh [STAGE] [OUT]
set -euo pipefail
stage=$(cd "${1:-build/gpu-stage}" && pwd)
out=${2:-${OUT:-/tmp/kwyre-gpu-results}}
work=${KWYRE_GPU_WORK:-$PWD/build/gpu-work}
results=$work/results
models=${MODELS:-1b-q8_0 1b-q4_0 1b-q4_k_m 8b-q4_0 8b-q4_k_m}
prompts=${PROMPTS:-512 1900}
variants=${VARIANTS:-default GGML_CUDA_DISABLE_PDL=1 upstream+GGML_CUDA_DISABLE_PDL=1}
. "$stage/prepare.sh"
jl="$out/replies.jsonl"
: >"$jl"

for m in $models; do
  gguf=$(model "$m")
  for p in $prompts; do
    for v in $variants; do
      bin=$work/bin/enginebench envs=()
      case $v in
        upstream*) bin=$work/bin/enginebench-upstream ;;
      esac
      case $v in
        *=*) envs=("${v#upstream+}") ;;
      esac
      env "${envs[@]}" "$bin" -model "$gguf" -backend-dir "$work/lib/ollama" -want-backend CUDA \
        -reply -prompt "$p" -gen "${GEN:-128}" 2>>"$results/replies.log" | grep '"name":"reply"' |
        sed "s/^{/{\"model\":\"$m\",\"variant\":\"$v\",/" >>"$jl"
    done
  done
done

python3 - "$jl" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
variants = list(dict.fromkeys(r["variant"] for r in rows))
print("| model | prompt | tokens | " + " | ".join(variants) + " | |")
print("|---|---|---|" + "---|" * len(variants) + "---|")
for m in dict.fromkeys(r["model"] for r in rows):
    for p in dict.fromkeys(r["prompt_tokens"] for r in rows if r["model"] == m):
        rs = {r["variant"]: r for r in rows if r["model"] == m and r["prompt_tokens"] == p}
        hs = [rs[v]["reply_fnv64"] if v in rs else "missing" for v in variants]
        toks = ",".join(sorted({str(r["completion_tokens"]) for r in rs.values()}))
        print("| %s | %d | %s | %s | %s |" % (m, p, toks, " | ".join(hs),
              "identical" if len(set(hs)) == 1 and "missing" not in hs else "DIFFER"))
EOF
