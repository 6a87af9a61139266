#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Refuses a kernel build tree pinio.ko cannot be built against, naming what is missing.
# Called by kmod/Makefile (`make -C kmod KDIR=... check`, also before `modules`).
#
#   check-kernel.sh KDIR RUSTC
#
# Checks, in order: KDIR is a configured kernel build tree; it was configured with
# CONFIG_RUST=y; its version is in the range the module's kernel-API use supports;
# RUSTC is the exact rustc the kernel was built with (CONFIG_RUSTC_VERSION).
# PINIO_ANY_KERNEL=1 turns the version check into a warning (to try a newer kernel).
# Exit status 0 when the tree is suitable; 1 with the reason on stderr when not.

# The kernel series the module is built and tested against (docs/kmod.md,
# "Building against your own kernel", says why not earlier, and why not later yet).
MIN_VERSION=7.3
MAX_VERSION=7.3

kdir=$1
rustc=${2:-rustc}
doc="see docs/kmod.md, \"Building against your own kernel\""

fail() {
    echo "pinio.ko: cannot build against $kdir: $*" >&2
    echo "pinio.ko: ($doc)" >&2
    exit 1
}

[ -n "$kdir" ] || fail "no KDIR given: make -C kmod KDIR=/lib/modules/\$(uname -r)/build"
[ -f "$kdir/Makefile" ] ||
    fail "not a kernel build tree (no Makefile there); install your kernel's headers (Debian: linux-headers-\$(uname -r)) or point KDIR at the tree the kernel was built in"

# The configuration: include/config/auto.conf exists in every prepared tree and headers
# package; .config in a build tree.
config=""
for c in "$kdir/include/config/auto.conf" "$kdir/.config"; do
    if [ -f "$c" ]; then
        config=$c
        break
    fi
done
[ -n "$config" ] ||
    fail "the tree is not configured (neither include/config/auto.conf nor .config exists); run 'make olddefconfig modules_prepare' in it, or use the headers package of a built kernel"

conf() { sed -n "s/^$1=//p" "$config" | head -n 1 | tr -d '"'; }

[ "$(conf CONFIG_RUST)" = y ] ||
    fail "the kernel was configured without Rust support: CONFIG_RUST is not set in ${config#"$kdir"/}. pinio.ko is written in Rust; it needs a kernel built with CONFIG_RUST=y (which needs CONFIG_MODVERSIONS off or CONFIG_GENDWARFKSYMS, and a supported rustc and bindgen at build time)"

# The kernel version: VERSION and PATCHLEVEL of the tree's top Makefile.
mk() { sed -n "s/^$1[[:space:]]*=[[:space:]]*\([0-9]*\).*/\1/p" "$kdir/Makefile" | head -n 1; }
version=$(mk VERSION)
patchlevel=$(mk PATCHLEVEL)
[ -n "$version" ] && [ -n "$patchlevel" ] ||
    fail "cannot read the kernel version (VERSION and PATCHLEVEL in $kdir/Makefile)"
num() { echo "$1" | awk -F. '{ printf "%d", $1 * 1000 + $2 }'; }
have=$(num "$version.$patchlevel")
if [ "$have" -lt "$(num $MIN_VERSION)" ] || [ "$have" -gt "$(num $MAX_VERSION)" ]; then
    why="kernel $version.$patchlevel is outside the range pinio.ko supports ($MIN_VERSION to $MAX_VERSION): the module uses Rust-for-Linux APIs that change between kernel releases (kernel::module::this_module, system_dfl_wq, kernel::mm::Mm, kernel::sync::aref::ARef, kernel::transmute, InPlaceModule)"
    if [ "${PINIO_ANY_KERNEL:-0}" = 1 ]; then
        echo "pinio.ko: warning: $why; trying anyway (PINIO_ANY_KERNEL=1)" >&2
    else
        fail "$why. PINIO_ANY_KERNEL=1 tries anyway (expect compile errors on other kernels)"
    fi
fi

# rustc: Rust has no stable ABI, so modules must be built by the exact compiler
# the kernel was (CONFIG_RUSTC_VERSION = major * 100000 + minor * 100 + patch).
want=$(conf CONFIG_RUSTC_VERSION)
want_text=$(conf CONFIG_RUSTC_VERSION_TEXT)
[ -n "$want" ] || fail "CONFIG_RUSTC_VERSION is missing from ${config#"$kdir"/} (a kernel older than 6.12?)"
got_text=$("$rustc" --version 2>/dev/null) ||
    fail "cannot run '$rustc --version': install ${want_text:-the rustc the kernel was built with} and pass RUSTC=/path/to/rustc"
got=$(echo "$got_text" | awk '{ split($2, v, /[.-]/); printf "%d", v[1] * 100000 + v[2] * 100 + v[3] }')
if [ "$got" != "$want" ]; then
    fail "rustc mismatch: the kernel was built with ${want_text:-rustc $want} (CONFIG_RUSTC_VERSION=$want), but '$rustc' is ${got_text}. Modules must be built by the kernel's exact rustc: install that version (e.g. rustup toolchain install $(echo "$want_text" | awk '{ print $2 }')) and pass RUSTC=\$(rustup which --toolchain $(echo "$want_text" | awk '{ print $2 }') rustc)"
fi
exit 0
