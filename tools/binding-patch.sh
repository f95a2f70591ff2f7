#!/usr/bin/env bash
# Prepares OUT (default build/binding): the pinned binding module
# (github.com/ollama/ollama, from the module cache, checked against go.sum) with
# every services/inference/binding-patches/*.patch applied, and OUT/kwyre.mod:
# go.mod plus a replace directive for that copy. The Makefile builds with
# -modfile=OUT/kwyre.mod. go.mod itself keeps the module as released, so a
# plain `go build` still works and gets it unpatched (correct, slower on a
# GPU); `go version -m` on a program shows which one it holds.
# A patch that does not apply stops the build.
#   tools/binding-patch.sh [OUT]
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
out=$(realpath -m "${1:-build/binding}")
mod=github.com/ollama/ollama
# Without the -modfile of an earlier run: this resolves the pinned module itself.
export GOFLAGS=-buildvcs=false
go mod download "$mod" # a no-op when the cache has it
read -r ver src < <(go list -m -f '{{.Version}} {{.Dir}}' "$mod")
if [ -z "$src" ] || [ ! -d "$src" ]; then
  echo "binding-patch: $mod $ver is not in the module cache (run: go mod download)" >&2
  exit 1
fi
command -v patch >/dev/null || { echo "binding-patch: patch not found (tools/install-deps.sh installs it)" >&2; exit 1; }

# Left as it is when nothing it is made from changed: a build running beside
# this one keeps its files.
stamp=$( { echo "$mod $ver $src $out"; cat go.mod go.sum "$0" "$top"/services/inference/binding-patches/*.patch 2>/dev/null; } | sha256sum | cut -d' ' -f1)
if [ -f "$out/stamp" ] && [ "$(cat "$out/stamp")" = "$stamp" ] && [ -d "$out/module" ]; then
  exit 0
fi

# The copy comes from the module cache: check it against go.sum first, as Go's
# own h1 directory hash (SHA-256 over each file's SHA-256 and path), so that a
# changed cache cannot slip into the build under the patches' name.
want=$(awk -v m="$mod" -v v="$ver" '$1 == m && $2 == v {print $3}' go.sum)
have=h1:$(cd "$src" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum |
  sed "s|  \./|  $mod@$ver/|" | sha256sum | cut -d' ' -f1 | tr a-f A-F | basenc --base16 -d | base64)
if [ -z "$want" ] || [ "$have" != "$want" ]; then
  echo "binding-patch: $src does not match go.sum ($have, want ${want:-no entry}): run go clean -modcache, then go mod download" >&2
  exit 1
fi

tmp=$out.tmp
rm -rf "$tmp"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp"
# Hard links where the file system allows (65 MB otherwise); every file a patch
# touches is replaced by a copy first, so the module cache is never written.
cp -al "$src" "$tmp/module" 2>/dev/null || { rm -rf "$tmp/module"; cp -a "$src" "$tmp/module"; }
find "$tmp/module" -type d -exec chmod u+w {} +
for p in "$top"/services/inference/binding-patches/*.patch; do
  [ -e "$p" ] || continue
  for f in $(sed -n 's|^+++ b/\([^[:space:]]*\).*|\1|p' "$p"); do
    cp --remove-destination "$src/$f" "$tmp/module/$f"
    chmod u+w "$tmp/module/$f"
  done
  # stdout too goes to stderr: `make -s env` prints the build environment there.
  patch -p1 --forward --fuzz=0 --quiet --no-backup-if-mismatch -d "$tmp/module" -i "$p" >&2 ||
    { echo "binding-patch: $p does not apply to $mod $ver" >&2; exit 1; }
done
# Relative to the main module: programs built in two checkouts stay identical.
rel=$(realpath -m --relative-to="$top" "$out/module")
case $rel in ../*) ;; *) rel=./$rel ;; esac
{ cat go.mod; printf '\nreplace %s %s => %s\n' "$mod" "$ver" "$rel"; } >"$tmp/kwyre.mod"
cp go.sum "$tmp/kwyre.sum" # -modfile X.mod reads X.sum
echo "$stamp" >"$tmp/stamp"
rm -rf "$out"
mv "$tmp" "$out"
echo "binding-patch: $mod $ver with $(ls services/inference/binding-patches/*.patch 2>/dev/null | wc -l) patch(es) in $out" >&2
