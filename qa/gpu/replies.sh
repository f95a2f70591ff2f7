#!/usr/bin/env bash
# The patches must keep the arithmetic: on the GPU machine, the greedy reply
# after a prompt (enginebench -reply: the prompt's batched kernels, then the
# single-token ones) for each model, prompt length and variant, and whether the
# variants' replies are identical. A variant is "default" (the staged programs
# as they are), NAME=VALUE (an environment setting), or "upstream" /
# "upstream+NAME=VALUE" (bin/enginebench-upstream, staged by
# stage.sh STAGE_B=upstream: the binding module as released), or "cpu" (no
# layer on the GPU: ggml's CPU backend as the reference).
# A random-weight model's greedy reply hardly depends on small differences in
# the arithmetic, so for prompts of at most 512 tokens (one batch) the logits
# after the prompt are compared too: each variant against the first, by the
# largest difference relative to the logits' spread and the top token.
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
      bin=$work/bin/enginebench envs=() flags=(-want-backend CUDA)
      case $v in
        upstream*) bin=$work/bin/enginebench-upstream ;;
        cpu) flags=(-gpu-layers 0) ;;
      esac
      case $v in
        *=*) envs=("${v#upstream+}") ;;
      esac
      lf=""
      if [ "$p" -le 512 ]; then
        lf=$results/logits-$m-$p-$(echo "$v" | tr -c 'A-Za-z0-9_\n' _).f32
        flags+=(-logits-out "$lf")
      fi
      env "${envs[@]}" "$bin" -model "$gguf" -backend-dir "$work/lib/ollama" "${flags[@]}" \
        -reply -prompt "$p" -gen "${GEN:-128}" 2>>"$results/replies.log" | grep '"name":"reply"' |
        sed "s|^{|{\"model\":\"$m\",\"variant\":\"$v\",\"logits\":\"$lf\",|" >>"$jl"
    done
  done
done

python3 - "$jl" <<'EOF'
import array, json, math, sys
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

def logits(path):
    a = array.array("f")
    with open(path, "rb") as f:
        a.frombytes(f.read())
    return a
print()
print("| model | prompt | variant | against | largest difference / spread (max - min) of the first | relative L2 difference | top token |")
print("|---|---|---|---|---|---|---|")
for m in dict.fromkeys(r["model"] for r in rows):
    for p in dict.fromkeys(r["prompt_tokens"] for r in rows if r["model"] == m):
        rs = [r for r in rows if r["model"] == m and r["prompt_tokens"] == p and r.get("logits")]
        if len(rs) < 2:
            continue
        ref = logits(rs[0]["logits"])
        spread = max(ref) - min(ref)
        top = max(range(len(ref)), key=ref.__getitem__)
        for r in rs[1:]:
            x = logits(r["logits"])
            d = max(abs(a - b) for a, b in zip(ref, x))
            l2 = math.sqrt(sum((a - b) ** 2 for a, b in zip(ref, x)) / sum(a * a for a in ref))
            xt = max(range(len(x)), key=x.__getitem__)
            print("| %s | %d | %s | %s | %.2e | %.2e | %s |" % (m, p, r["variant"], rs[0]["variant"], d / spread, l2,
                  "same (%d)" % top if xt == top else "%d, not %d" % (xt, top)))
EOF
