#!/bin/sh
# Guest smoke checks run by `cargo xtask test` (docs/guest.md). One check per call:
#   smoke.sh vfio                 /dev/vfio/vfio exists (VFIO built in)
#   smoke.sh iommu                the emulated intel-iommu is active (a dmar unit in /sys/class/iommu)
#   smoke.sh pci VENDOR DEVICE    a PCI function with these hex ids is on the bus
#   smoke.sh nvme-disk            the NVMe namespace block device exists
#   smoke.sh module-cycle KO      insmod KO, check /sys/module, rmmod it, check it is gone
#   smoke.sh module-reload KO     the module is loaded; rmmod it and insmod it again
set -u

mod_name() { basename "$1" .ko | tr - _; }

case "${1:-}" in
vfio)
    [ -c /dev/vfio/vfio ] || { echo "no /dev/vfio/vfio character device"; exit 1; }
    echo "/dev/vfio/vfio present"
    ;;
iommu)
    ls /sys/class/iommu/ 2>/dev/null | grep -q dmar || { echo "no dmar unit under /sys/class/iommu (intel_iommu=on?)"; exit 1; }
    echo "iommu units: $(ls /sys/class/iommu | tr '\n' ' ')"
    ;;
pci)
    want="0x$2:0x$3"
    for d in /sys/bus/pci/devices/*; do
        if [ "$(cat "$d/vendor"):$(cat "$d/device")" = "$want" ]; then
            echo "found $2:$3 at $(basename "$d") (iommu group $(basename "$(readlink "$d/iommu_group")"))"
            exit 0
        fi
    done
    echo "no PCI device $2:$3; devices are:"
    for d in /sys/bus/pci/devices/*; do echo "  $(basename "$d") $(cat "$d/vendor"):$(cat "$d/device")"; done
    exit 1
    ;;
nvme-disk)
    [ -b /dev/nvme0n1 ] || { echo "no /dev/nvme0n1"; exit 1; }
    echo "/dev/nvme0n1: $(cat /sys/block/nvme0n1/size) sectors"
    ;;
module-cycle)
    name=$(mod_name "$2")
    insmod "$2" || { echo "insmod $2 failed"; exit 1; }
    [ -d "/sys/module/$name" ] || { echo "$name not in /sys/module after insmod"; exit 1; }
    rmmod "$name" || { echo "rmmod $name failed"; exit 1; }
    [ ! -d "/sys/module/$name" ] || { echo "$name still in /sys/module after rmmod"; exit 1; }
    echo "$name loaded and unloaded"
    ;;
module-reload)
    name=$(mod_name "$2")
    [ -d "/sys/module/$name" ] || { echo "$name was not loaded at boot"; exit 1; }
    rmmod "$name" || { echo "rmmod $name failed"; exit 1; }
    [ ! -d "/sys/module/$name" ] || { echo "$name still in /sys/module after rmmod"; exit 1; }
    insmod "$2" || { echo "insmod $2 failed"; exit 1; }
    [ -d "/sys/module/$name" ] || { echo "$name not in /sys/module after insmod"; exit 1; }
    echo "$name unloaded and loaded again"
    ;;
*)
    echo "usage: smoke.sh vfio|iommu|pci V D|nvme-disk|module-cycle KO|module-reload KO" >&2
    exit 2
    ;;
esac
