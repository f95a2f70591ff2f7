#!/usr/bin/env bash
# Installs everything the build and the tests need on a fresh Debian 12 machine (as root).
# Idempotent: a second run installs nothing and takes a few seconds.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
stamp="$top/build/.deps-v1"

# Debian packages: C++ for the llama.cpp binding, its header-only libraries, the image
# tools (QEMU, OVMF, the UKI stub, FAT tools), the kernel and its build, and test tools.
pkgs=(
  build-essential pkg-config git ca-certificates zstd xz-utils cpio
  nlohmann-json3-dev libstb-dev
  qemu-system-x86 ovmf systemd-boot-efi binutils mtools dosfstools erofs-utils squashfs-tools
  sbsigntool
  linux-source-6.1 bc bison flex libelf-dev libssl-dev openssl kmod dwarves
  strace gdb iproute2 tmux patch
)

need=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
done
if ((${#need[@]})); then
  echo "deps: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

# miniaudio.h is only in Debian trixie. Fetch that one header package with a private apt
# state so the machine's own sources stay untouched.
if [ ! -f /usr/local/include/miniaudio/miniaudio.h ]; then
  echo "deps: fetching miniaudio.h (trixie libminiaudio-dev)"
  tmp=$(mktemp -d)
  mkdir -p "$tmp/lists/partial" "$tmp/debs"
  echo "deb http://deb.debian.org/debian trixie main" >"$tmp/sources.list"
  aptopt=(-o Dir::Etc::SourceList="$tmp/sources.list" -o Dir::Etc::SourceParts=/dev/null
          -o Dir::State::Lists="$tmp/lists" -o Debug::NoLocking=1)
  apt-get "${aptopt[@]}" update -qq
  (cd "$tmp/debs" && apt-get "${aptopt[@]}" download libminiaudio-dev)
  dpkg-deb -x "$tmp"/debs/libminiaudio-dev_*.deb "$tmp/root"
  mkdir -p /usr/local/include/miniaudio
  install -m 0644 "$tmp/root/usr/include/miniaudio.h" /usr/local/include/miniaudio/miniaudio.h
  rm -rf "$tmp"
fi

# Debian's kernel, unpacked (not installed): the image boots it when our own kernel is not built.
kdir="$top/build/debian-kernel"
if [ ! -f "$kdir/vmlinuz" ]; then
  echo "deps: unpacking Debian's linux-image-amd64"
  tmp=$(mktemp -d)
  ver=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
  (cd "$tmp" && apt-get download "$ver")
  dpkg-deb -x "$tmp"/linux-image-*.deb "$tmp/root"
  mkdir -p "$kdir"
  cp "$tmp"/root/boot/vmlinuz-* "$kdir/vmlinuz"
  kver=$(basename "$tmp"/root/lib/modules/*)
  echo "$kver" >"$kdir/version"
  rm -rf "$kdir/modules"
  mkdir -p "$kdir/modules"
  cp -a "$tmp/root/lib/modules/$kver/." "$kdir/modules/"
  rm -rf "$tmp"
fi

# Go modules, so that builds and tests never wait on the network afterwards.
# Without the Makefile's -modfile: its file may not exist yet.
(cd "$top" && GOFLAGS=-buildvcs=false go mod download)
mkdir -p "$(dirname "$stamp")"
touch "$stamp"
echo "deps: ok"
