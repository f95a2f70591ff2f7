#!/usr/bin/env bash
# Boots a Kwyre disk image in QEMU with UEFI firmware (OVMF), the serial
# console on this terminal (the chat works right here), and no network.
#
#   qa/run-qemu.sh build/kwyre.img [extra QEMU arguments...]
#
# Environment:
#   KWYRE_MEM     guest memory in MiB (default: 1024 + 2 x the image size)
#   KWYRE_ACCEL   kvm | tcg (default: kvm if a 3-second probe works, else tcg)
#   KWYRE_SERIAL  QEMU -serial backend (default mon:stdio: Ctrl-A x quits,
#                 Ctrl-A c toggles the QEMU monitor)
#   KWYRE_DISPLAY QEMU -display value (default: gtk when DISPLAY is set, else none)
#   KWYRE_DISK    virtio (default: a virtio-blk-pci disk) | usb (a USB stick on
#                 an xHCI controller, device id "bootdisk": QMP device_del
#                 pulls it, as a user pulls the stick)
#   OVMF_CODE / OVMF_VARS  firmware files (default: Debian's ovmf package, 4M)
set -euo pipefail

img=${1:?usage: run-qemu.sh IMAGE [extra QEMU arguments...]}
shift
[[ -f $img ]] || { echo "run-qemu: $img: no such image (run make image)" >&2; exit 1; }

QEMU=${QEMU:-qemu-system-x86_64}
OVMF_CODE=${OVMF_CODE:-/usr/share/OVMF/OVMF_CODE_4M.fd}
OVMF_VARS=${OVMF_VARS:-/usr/share/OVMF/OVMF_VARS_4M.fd}
for f in "$OVMF_CODE" "$OVMF_VARS"; do
  [[ -r $f ]] || { echo "run-qemu: firmware $f missing (apt-get install ovmf)" >&2; exit 1; }
done

# KVM only if it really runs a guest: /dev/kvm can exist on a CPU without
# vmx/svm, where -accel kvm hangs or fails. Probe for 3 seconds.
kvm_works() {
  [[ -w /dev/kvm ]] || return 1
  grep -qE '\b(vmx|svm)\b' /proc/cpuinfo || return 1
  local out
  out=$( { echo cont; sleep 1; echo 'info status'; echo quit; } |
    timeout 3 "$QEMU" -accel kvm -M q35 -nodefaults -display none -S -monitor stdio 2>&1) || return 1
  grep -q 'VM status: running' <<<"$out"
}
accel=${KWYRE_ACCEL:-}
if [[ -z $accel ]]; then
  if kvm_works; then accel=kvm; else accel=tcg; fi
fi
if [[ $accel == kvm ]]; then
  cpu=(-cpu host -smp "$(( $(nproc) > 1 ? $(nproc) / 2 : 1 ))")
else
  # Multi-threaded TCG with -smp 2 boots slower than one vCPU here.
  cpu=(-cpu max -smp 1)
fi

# The model sits in the image (initramfs or partition); the guest holds it in
# RAM (page cache or tmpfs) while llama.cpp maps it: 1 GiB + 2 x image size.
img_mib=$(( ($(stat -c %s "$img") + 1048575) / 1048576 ))
mem=${KWYRE_MEM:-$(( 1024 + 2 * img_mib ))}

display=${KWYRE_DISPLAY:-}
if [[ -z $display ]]; then
  if [[ -n ${DISPLAY:-} ]]; then display=gtk; else display=none; fi
fi

# A private copy of the firmware variables, deleted at once and handed to
# QEMU as an open descriptor: nothing is left behind however QEMU ends.
vars=$(mktemp --tmpdir kwyre-ovmf-vars.XXXXXX)
cp "$OVMF_VARS" "$vars"
exec 3<>"$vars"
rm -f "$vars"

case ${KWYRE_DISK:-virtio} in
virtio) disk=(-device virtio-blk-pci,drive=disk,bootindex=1) ;;
usb) disk=(-device qemu-xhci,id=xhci -device usb-storage,bus=xhci.0,drive=disk,id=bootdisk,removable=on,bootindex=1) ;;
*) echo "run-qemu: KWYRE_DISK=$KWYRE_DISK: want virtio or usb" >&2; exit 1 ;;
esac

echo "run-qemu: $img, accel $accel, ${mem} MiB, serial console here${display:+, display $display}" >&2
exec "$QEMU" \
  -accel "$accel" "${cpu[@]}" -M q35 -m "$mem" \
  -drive if=pflash,format=raw,unit=0,readonly=on,file="$OVMF_CODE" \
  -drive if=pflash,format=raw,unit=1,file=/dev/fd/3 \
  -drive if=none,id=disk,format=raw,readonly=on,file="$img" \
  "${disk[@]}" \
  -nic none \
  -display "$display" -vga std \
  -serial "${KWYRE_SERIAL:-mon:stdio}" \
  -no-reboot \
  "$@"
