#!/usr/bin/env bash
# Checks the kernel configuration:
#   1. every option kwyre.config asks for holds in the final .config (after
#      tinyconfig + fragment + olddefconfig); an option the build dropped
#      because a dependency is missing is a failure;
#   2. every option named in kwyre.config and kspp.list exists in Kconfig
#      (a misspelt "is not set" would otherwise pass silently);
#   3. prints the KSPP recommendations of kspp.list met and missed; a miss
#      not marked "MISS:" there, or a "MISS:" that is in fact met, fails.
#
#   kernel-config/check.sh            configure a scratch copy and check it
#   kernel-config/check.sh FILE       check an existing .config (e.g. build/vmlinuz-kwyre.config)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
build=${KWYRE_BUILD:-$root/build}

if [ $# -ge 1 ]; then
	config=$1
	[ -r "$config" ] || {
		echo "kernel-check: cannot read $config" >&2
		exit 1
	}
else
	# A separate O= folder, so a check never disturbs a build in progress.
	KWYRE_KERNEL_OBJ=$build/kernel-check-obj "$here/build.sh" config
	config=$build/kernel-check-obj/.config
fi

src=$build/kernel-src/linux-source-6.1
[ -d "$src" ] || {
	echo "kernel-check: no kernel source in $src (run kernel-config/build.sh config)" >&2
	exit 1
}

# Every symbol Kconfig defines, one per line.
symbols=$(mktemp)
trap 'rm -f "$symbols"' EXIT
find "$src" -name 'Kconfig*' -type f -print0 |
	xargs -0 grep -hoE '^[[:space:]]*(menu)?config[[:space:]]+[A-Za-z0-9_]+' |
	awk '{print "CONFIG_" $2}' | sort -u >"$symbols"

echo "kernel-check: $config"
awk -v symbols="$symbols" -v fragment="$here/kwyre.config" -v kspp="$here/kspp.list" '
BEGIN {
	while ((getline line < symbols) > 0) known[line] = 1
}
# The final .config: CONFIG_X=v, or "# CONFIG_X is not set"; absent = n.
FILENAME != fragment && FILENAME != kspp {
	if ($0 ~ /^CONFIG_[A-Za-z0-9_]+=/) {
		i = index($0, "=")
		have[substr($0, 1, i - 1)] = substr($0, i + 1)
	} else if ($0 ~ /^# CONFIG_[A-Za-z0-9_]+ is not set$/) {
		have[$2] = "n"
	}
	next
}
FILENAME == fragment {
	name = ""
	if ($0 ~ /^CONFIG_[A-Za-z0-9_]+=/) {
		i = index($0, "=")
		name = substr($0, 1, i - 1); want = substr($0, i + 1)
	} else if ($0 ~ /^# CONFIG_[A-Za-z0-9_]+ is not set$/) {
		name = $2; want = "n"
	}
	if (name == "") next
	nfrag++
	if (!(name in known)) { printf "  unknown option %s (kwyre.config:%d): not in this kernel'"'"'s Kconfig\n", name, FNR; bad++; fragbad++; next }
	got = (name in have) ? have[name] : "n"
	if (got != want) {
		why = (name in have) ? "" : " (absent: a dependency is off)"
		printf "  FRAGMENT MISS %s: want %s, got %s%s\n", name, want, got, why
		bad++; fragbad++
	}
	next
}
FILENAME == kspp {
	if ($0 ~ /^[[:space:]]*(#|$)/) next
	name = $1; want = $2
	note = $0; sub(/^[^[:space:]]+[[:space:]]+[^[:space:]]+[[:space:]]*/, "", note)
	nk++
	if (name !~ /^CONFIG_/ || want == "") { printf "  kspp.list:%d: want \"CONFIG_X VALUE reason\"\n", FNR; bad++; next }
	if (!(name in known)) { printf "  unknown option %s (kspp.list:%d): not in this kernel'"'"'s Kconfig\n", name, FNR; bad++; next }
	got = (name in have) ? have[name] : "n"
	deliberate = (note ~ /^MISS:/)
	if (got == want) {
		met[++nmet] = sprintf("%s=%s", name, want)
		if (deliberate) { printf "  kspp.list marks %s as missed but it is met: update kspp.list\n", name; bad++ }
	} else if (deliberate) {
		r = note; sub(/^MISS:[[:space:]]*/, "", r)
		missed[++nmiss] = sprintf("%s (want %s, have %s): %s", name, want, got, r)
	} else {
		unexpected[++nun] = sprintf("%s (want %s, have %s)", name, want, got)
		bad++
	}
	next
}
END {
	printf "fragment: %d options, %d do not hold\n", nfrag, fragbad
	printf "KSPP: %d recommendations: %d met, %d missed deliberately, %d missed unexpectedly\n", nk, nmet, nmiss, nun
	for (i = 1; i <= nmet; i++) printf "  met     %s\n", met[i]
	for (i = 1; i <= nmiss; i++) printf "  missed  %s\n", missed[i]
	for (i = 1; i <= nun; i++) printf "  MISSED  %s: not marked MISS: in kspp.list\n", unexpected[i]
	if (bad > 0) { printf "kernel-check: FAIL (%d problems)\n", bad; exit 1 }
	print "kernel-check: ok"
}
' "$config" "$here/kwyre.config" "$here/kspp.list"
