#!/usr/bin/env bash
# Builds build/vmlinuz-kwyre: Debian's linux-source-6.1, `make tinyconfig`,
# kernel-config/kwyre.config merged over it, `make olddefconfig`, bzImage.
#
#   kernel-config/build.sh          build (skipped when nothing changed)
#   kernel-config/build.sh config   only write the final .config (seconds)
#
# Environment: KWYRE_BUILD (default <repo>/build), KWYRE_KERNEL_SOURCE
# (default /usr/src/linux-source-6.1.tar.xz), KWYRE_KERNEL_OBJ (the O= folder,
# default $KWYRE_BUILD/kernel-obj).
#
# Module signing: the build makes an RSA key once, in $KWYRE_BUILD/kernel-keys
# (never committed). The kernel trusts only that key and refuses unsigned
# modules, so NVIDIA's driver must be signed with it (see README.md).
#
# Output: $KWYRE_BUILD/vmlinuz-kwyre (bzImage), vmlinuz-kwyre.config, and
# $KWYRE_BUILD/kwyre-modules/ (the module tree the image builder reads).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
build=${KWYRE_BUILD:-$root/build}
tarball=${KWYRE_KERNEL_SOURCE:-/usr/src/linux-source-6.1.tar.xz}
srcdir=$build/kernel-src
src=$srcdir/linux-source-6.1
obj=${KWYRE_KERNEL_OBJ:-$build/kernel-obj}
keys=$build/kernel-keys
out=$build/vmlinuz-kwyre
modtree=$build/kwyre-modules
fragment=$here/kwyre.config
mode=${1:-build}

case $mode in
build | config) ;;
*)
	echo "usage: $0 [build|config]" >&2
	exit 2
	;;
esac

log() { echo "kernel: $*" >&2; }
die() {
	echo "kernel: $*" >&2
	exit 1
}

[ -r "$tarball" ] || die "no kernel source at $tarball (install Debian's linux-source-6.1: tools/install-deps.sh)"
mkdir -p "$build"

# Unpack once; a different tarball (a Debian update) unpacks afresh.
source_sha=$(sha256sum "$tarball" | cut -d' ' -f1)
unpack() {
	if [ -f "$src/Makefile" ] && [ "$(cat "$srcdir/.source-sha256" 2>/dev/null)" = "$source_sha" ]; then
		return
	fi
	log "unpacking $tarball into $srcdir"
	rm -rf "$srcdir"
	mkdir -p "$srcdir"
	nice tar -xJf "$tarball" -C "$srcdir"
	[ -f "$src/Makefile" ] || die "$tarball did not unpack to linux-source-6.1/"
	echo "$source_sha" >"$srcdir/.source-sha256"
}

# The module signing key: made once, private key and certificate in one PEM
# as the kernel's sign-file expects.
signing_key() {
	local pem=$keys/signing_key.pem
	[ -s "$pem" ] && return
	log "generating the module signing key in $keys"
	mkdir -p "$keys"
	chmod 700 "$keys"
	local genkey
	genkey=$(mktemp)
	cat >"$genkey" <<'EOF'
[ req ]
default_bits = 4096
distinguished_name = req_distinguished_name
prompt = no
string_mask = utf8only
x509_extensions = myexts

[ req_distinguished_name ]
O = Kwyre
CN = Kwyre kernel module signing key

[ myexts ]
basicConstraints=critical,CA:FALSE
keyUsage=digitalSignature
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
EOF
	(umask 077 && openssl req -new -nodes -utf8 -sha512 -days 36500 -batch -x509 \
		-config "$genkey" -outform PEM -out "$pem.tmp" -keyout "$pem.tmp" 2>/dev/null) ||
		{
			rm -f "$genkey" "$pem.tmp"
			die "openssl could not generate the module signing key"
		}
	rm -f "$genkey"
	mv "$pem.tmp" "$pem"
	openssl x509 -in "$pem" -outform DER -out "$keys/signing_key.x509"
}

kmake() {
	make -s -C "$src" O="$obj" ARCH=x86_64 \
		KBUILD_BUILD_USER=kwyre KBUILD_BUILD_HOST=kwyre "$@"
}

configure() {
	mkdir -p "$obj"
	kmake tinyconfig >"$obj/tinyconfig.log" 2>&1 || { cat "$obj/tinyconfig.log" >&2; die "make tinyconfig failed"; }
	local keyfrag=$obj/kwyre-signing.config
	printf 'CONFIG_MODULE_SIG_KEY="%s"\n' "$keys/signing_key.pem" >"$keyfrag"
	# merge_config.sh -m only merges; olddefconfig then resolves dependencies.
	(cd "$obj" && "$src/scripts/kconfig/merge_config.sh" -m -O "$obj" "$obj/.config" "$fragment" "$keyfrag") >"$obj/merge.log" 2>&1 ||
		{
			cat "$obj/merge.log" >&2
			die "merge_config.sh failed"
		}
	kmake olddefconfig >"$obj/olddefconfig.log" 2>&1 || {
		cat "$obj/olddefconfig.log" >&2
		die "make olddefconfig failed"
	}
}

unpack
signing_key
configure

if [ "$mode" = config ]; then
	log "configured $obj/.config"
	exit 0
fi

# The kernel's module tree (what lib/modules/RELEASE holds): the lists of
# built-in modules, so the image builder knows the boot drivers need no .ko,
# and the place for out-of-tree modules (NVIDIA's, signed with the build's
# key, in extra/). Only the kernel's own lists are replaced.
install_module_tree() {
	mkdir -p "$modtree"
	local f
	for f in modules.builtin modules.builtin.modinfo modules.order; do
		cp "$obj/$f" "$modtree/$f.tmp"
		mv "$modtree/$f.tmp" "$modtree/$f"
	done
	cp "$obj/include/config/kernel.release" "$modtree/version.tmp"
	mv "$modtree/version.tmp" "$modtree/version"
}

# Skip the compile when the fragment, this script, the source and the key are
# what built the kernel that is there.
stamp=$(cat "$fragment" "$0" "$keys/signing_key.x509" | sha256sum | cut -d' ' -f1)
stamp="$stamp $source_sha"
if [ -f "$out" ] && [ "$(cat "$out.stamp" 2>/dev/null)" = "$stamp" ]; then
	install_module_tree
	touch "$out" # newer than its inputs, for make's file dependency
	log "$out is up to date ($(stat -c %s "$out") bytes)"
	exit 0
fi

jobs=$(nproc)
log "building in $obj with -j$jobs (log: $build/kernel-build.log)"
start=$(date +%s)
if ! nice make -C "$src" O="$obj" ARCH=x86_64 KBUILD_BUILD_USER=kwyre KBUILD_BUILD_HOST=kwyre \
	-j"$jobs" bzImage modules >"$build/kernel-build.log" 2>&1; then
	tail -n 40 "$build/kernel-build.log" >&2
	die "kernel build failed (full log: $build/kernel-build.log)"
fi
secs=$(($(date +%s) - start))

cp "$obj/arch/x86/boot/bzImage" "$out.tmp"
mv "$out.tmp" "$out"
cp "$obj/.config" "$out.config"
install_module_tree
echo "$stamp" >"$out.stamp"
log "built $out: $(stat -c %s "$out") bytes, $(cat "$obj/include/config/kernel.release"), ${secs}s"
