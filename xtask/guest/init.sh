#!/bin/busybox sh
# pinio guest init: PID 1 of the initramfs built by `cargo xtask` (docs/guest.md).
#
# Kernel command line (passed to us as environment variables):
#   pinio_shares=TAG:PATH[,TAG:PATH...]  9p shares to mount at the same path as on the host
#   pinio_run=DIR                        the run directory xtask wrote (inside a share):
#       DIR/modules   lines "KO [PARAMS...]" to insmod before the job (rmmod after)
#       DIR/job.sh    the job, run with sh; its exit status is reported
# Everything is reported on the console as lines starting with "PINIO-".
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
export HOME=/root

say() { echo "PINIO-$*"; }
finish() {
    say "EXIT $1"
    sync
    poweroff -f
}

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t debugfs debugfs /sys/kernel/debug
mount -t tmpfs tmpfs /tmp
mkdir -p /dev/shm /dev/hugepages /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t hugetlbfs hugetlbfs /dev/hugepages
ln -sf /proc/self/fd /dev/fd
ln -sf /proc/self/fd/0 /dev/stdin
ln -sf /proc/self/fd/1 /dev/stdout
ln -sf /proc/self/fd/2 /dev/stderr
hostname pinio-guest

for share in $(echo "$pinio_shares" | tr ',' ' '); do
    tag=${share%%:*}
    dir=${share#*:}
    mkdir -p "$dir"
    if ! mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,cache=loose "$tag" "$dir"; then
        say "ERROR cannot mount 9p share $tag at $dir"
        finish 125
    fi
done

run=$pinio_run
if [ -z "$run" ] || [ ! -f "$run/job.sh" ]; then
    say "ERROR no job script at '$run/job.sh'"
    finish 125
fi

loaded=""
rc=0
if [ -f "$run/modules" ]; then
    while read -r ko params; do
        [ -n "$ko" ] || continue
        name=$(basename "$ko" .ko | tr - _)
        if out=$(insmod "$ko" $params 2>&1); then
            loaded="$name $loaded"
            say "INSMOD-OK $name"
        else
            say "INSMOD-FAIL $name: $out"
            rc=125
        fi
    done < "$run/modules"
fi

if [ "$rc" = 0 ]; then
    say "CMD-START $(cut -d' ' -f1 /proc/uptime)"
    sh "$run/job.sh"
    rc=$?
    say "CMD-END $rc $(cut -d' ' -f1 /proc/uptime)"
fi

for name in $loaded; do
    if [ -d "/sys/module/$name" ]; then
        if out=$(rmmod "$name" 2>&1); then
            say "RMMOD-OK $name"
        else
            say "RMMOD-FAIL $name: $out"
        fi
    fi
done

# Pins held by exiting processes may be released asynchronously (io_uring ring
# teardown runs in a workqueue): give the counters up to 5 s to settle. The
# counters are per-CPU and folded into /proc/vmstat lazily, so each look first
# asks the kernel to fold them (vm.stat_refresh) and reads both from one pass.
pins() {
    echo 1 > /proc/sys/vm/stat_refresh 2>/dev/null
    acq=; rel=
    while read -r key value; do
        case $key in
            nr_foll_pin_acquired) acq=$value ;;
            nr_foll_pin_released) rel=$value ;;
        esac
    done < /proc/vmstat
}
pins
i=0
while [ "$acq" != "$rel" ] && [ $i -lt 50 ]; do
    sleep 0.1
    i=$((i + 1))
    pins
done
say "VMSTAT nr_foll_pin_acquired $acq"
say "VMSTAT nr_foll_pin_released $rel"
sync
finish "$rc"
