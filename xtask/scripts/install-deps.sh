#!/usr/bin/env bash
# Installs what pinio's guest platform and host benchmarks need on a fresh
# Debian 12 machine. Idempotent: a second run only checks.
#
# - bookworm: clang/lld/llvm 19, kernel build tools, busybox, fio, valgrind
# - bookworm-backports: QEMU 10 (edu, nvme, intel-iommu)
# - trixie-backports, pinned low, arch-all only: linux-source-7.3 and the
#   rust-src matching rustc exactly. Nothing else comes from trixie.
# - the Rust registry: bindgen-cli (the kernel needs >= 0.71.1)
set -euo pipefail

say() { printf '\033[1mpinio setup:\033[0m %s\n' "$*" >&2; }

SUDO=""
if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || { say "need root or sudo to install packages"; exit 1; }
    SUDO="sudo"
fi

RUSTC_VERSION=$(rustc --version | awk '{print $2}')
KERNEL_SERIES=${PINIO_KERNEL_SERIES:-7.3}
APT="$SUDO apt-get -o DPkg::Lock::Timeout=900 -y -q"

need_pkgs=()
have() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "ok installed"; }

if ! [ -f /etc/apt/sources.list.d/pinio-extra.sources ]; then
    say "adding bookworm-backports, trixie and trixie-backports (trixie pinned to priority 50)"
    $SUDO tee /etc/apt/sources.list.d/pinio-extra.sources >/dev/null <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports trixie trixie-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    $SUDO tee /etc/apt/preferences.d/pinio-pin >/dev/null <<'PIN'
Package: *
Pin: release n=trixie
Pin-Priority: 50

Package: *
Pin: release n=trixie-backports
Pin-Priority: 50

Package: *
Pin: release n=bookworm-backports
Pin-Priority: 100
PIN
    FRESH_SOURCES=1
fi

base=(clang-19 lld-19 llvm-19 libclang-19-dev bc bison flex libelf-dev libssl-dev
      cpio busybox-static kmod make xz-utils gcc libc6-dev e2fsprogs fio valgrind util-linux)
for p in "${base[@]}"; do have "$p" || need_pkgs+=("$p"); done
qemu_ok=0
if command -v qemu-system-x86_64 >/dev/null && qemu-system-x86_64 -device help 2>/dev/null | grep -q '"edu"'; then qemu_ok=1; fi
src_ok=0; ls /usr/src/linux-source-"$KERNEL_SERIES".tar.* >/dev/null 2>&1 && src_ok=1
rsrc_ok=0; [ -d /usr/src/rustc-"$RUSTC_VERSION"/library ] && rsrc_ok=1

if [ ${#need_pkgs[@]} -gt 0 ] || [ $qemu_ok = 0 ] || [ $src_ok = 0 ] || [ $rsrc_ok = 0 ]; then
    say "apt-get update"
    $APT update >/dev/null
fi
if [ ${#need_pkgs[@]} -gt 0 ]; then
    say "installing ${need_pkgs[*]}"
    DEBIAN_FRONTEND=noninteractive $APT install --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi
if [ $qemu_ok = 0 ]; then
    say "installing qemu-system-x86 from bookworm-backports"
    DEBIAN_FRONTEND=noninteractive $APT install --no-install-recommends -t bookworm-backports qemu-system-x86 >/dev/null
fi
if [ $src_ok = 0 ]; then
    say "installing linux-source-$KERNEL_SERIES (arch all) from trixie-backports"
    DEBIAN_FRONTEND=noninteractive $APT install --no-install-recommends -t trixie-backports "linux-source-$KERNEL_SERIES" >/dev/null
fi
if [ $rsrc_ok = 0 ]; then
    ver=$(apt-cache madison rust-src | awk -v v="$RUSTC_VERSION" '$3 ~ "^"v"\\+" {print $3; exit}')
    if [ -z "$ver" ]; then
        say "no Debian rust-src package matches rustc $RUSTC_VERSION exactly; the kernel needs them equal"
        exit 1
    fi
    say "installing rust-src=$ver (arch all) to match rustc $RUSTC_VERSION"
    DEBIAN_FRONTEND=noninteractive $APT install --no-install-recommends "rust-src=$ver" >/dev/null
fi

BINDGEN="$HOME/.cargo/bin/bindgen"
if ! [ -x "$BINDGEN" ]; then
    say "cargo install bindgen-cli (about 2 minutes)"
    LIBCLANG_PATH=/usr/lib/llvm-19/lib cargo install --locked bindgen-cli --version '^0.73' >&2
fi
say "dependencies present"
