#!/usr/bin/env bash
# Installs what pinio's guest platform and host benchmarks need on a fresh
# Debian 12 machine. Idempotent: a second run only checks.
#
# - bookworm: clang/lld/llvm 19, kernel build tools, busybox, fio, valgrind
# - bookworm-backports: QEMU 10 (edu, nvme, intel-iommu)
# - trixie-backports, pinned low, arch-all only: linux-source-7.3 and the
#   rust-src matching rustc exactly. Nothing else comes from trixie.
# - the Rust registry: bindgen-cli (the kernel needs >= 0.71.1)
#
# The extra suites are fetched from the archive URI (and checked with the
# keyring) of the machine's own apt source for Debian's main archive: the
# deb (not deb-src) entry whose suite is the release's codename and that has
# the main component, in deb822 (*.sources) or one-line (*.list) format. So
# a machine whose apt goes through a proxy or a local cache keeps using it.
#
# Usage:
#   install-deps.sh                        check, and install what is missing
#   install-deps.sh --print-sources [ROOT] print the extra sources file derived
#                                          from ROOT's apt sources (default /)
#                                          and exit; changes nothing
set -euo pipefail

say() { printf '\033[1mpinio setup:\033[0m %s\n' "$*" >&2; }

EXTRA_SOURCES=/etc/apt/sources.list.d/pinio-extra.sources
EXTRA_PIN=/etc/apt/preferences.d/pinio-pin
EXTRA_SUITES="bookworm-backports trixie trixie-backports"

# The codename of the release under ROOT (from etc/os-release), bookworm
# when it does not say.
codename() {
    local root=$1 c=""
    if [ -r "$root/etc/os-release" ]; then
        c=$(sed -n 's/^VERSION_CODENAME=["'"'"']\{0,1\}\([A-Za-z0-9_-]*\).*/\1/p' "$root/etc/os-release" | head -n1)
    fi
    printf '%s\n' "${c:-bookworm}"
}

# Prints "FILE<TAB>URIS<TAB>SIGNED-BY" for the apt source under ROOT that
# serves Debian's main archive (SIGNED-BY may be empty; an inline key keeps
# its lines, joined by \037). Files are read in apt's order: sources.list,
# then sources.list.d/*.list and *.sources by name, leaving out the file
# this script writes. Among the matches, one whose keyring is Debian's own
# (or that names none) wins over one with another keyring (a third-party
# repository using the codename as its suite); otherwise the first wins.
# Exits 1, printing nothing, when there is none.
debian_source() {
    local root=$1 suite files=() f
    suite=$(codename "$root")
    [ -f "$root/etc/apt/sources.list" ] && files+=("$root/etc/apt/sources.list")
    for f in "$root"/etc/apt/sources.list.d/*; do
        [ -f "$f" ] || continue
        [ "$f" = "$root$EXTRA_SOURCES" ] && continue
        case $f in *.list | *.sources) files+=("$f") ;; esac
    done
    [ ${#files[@]} -gt 0 ] || return 1
    awk -v suite="$suite" -v rootlen="${#root}" '
        function trim(s) { sub(/^[ \t]+/, "", s); sub(/[ \t]+$/, "", s); return s }
        function has(list, word,   n, i, w) {
            n = split(trim(list), w, /[ \t]+/)
            for (i = 1; i <= n; i++) if (w[i] == word) return 1
            return 0
        }
        function consider(types, uris, suites, comps, signed, enabled,   score) {
            uris = trim(uris); gsub(/[ \t]+/, " ", uris)
            if (tolower(trim(enabled)) == "no" || uris == "") return
            if (!has(types, "deb") || !has(suites, suite) || !has(comps, "main")) return
            score = signed == "" ? 1 : (index(signed, "debian-archive-") ? 2 : 0)
            if (score > best) { best = score; bfile = substr(cur, rootlen + 1); buris = uris; bsigned = signed }
        }
        function flush() {
            if (have) consider(f["types"], f["uris"], f["suites"], f["components"], f["signed-by"], f["enabled"])
            split("", f); have = 0; key = ""
        }
        BEGIN { best = -1; NL = "\037" }
        FNR == 1 { flush(); cur = FILENAME; deb822 = cur ~ /\.sources$/ }
        deb822 && /^#/ { next }
        deb822 && /^[ \t]*$/ { flush(); next }
        deb822 && /^[ \t]/ {
            if (key == "signed-by") f[key] = f[key] NL $0
            else if (key != "") f[key] = f[key] " " $0
            next
        }
        deb822 {
            p = index($0, ":")
            if (p == 0) next
            key = tolower(trim(substr($0, 1, p - 1)))
            f[key] = trim(substr($0, p + 1))
            have = 1
            next
        }
        {
            line = $0
            sub(/#.*/, "", line)
            n = split(trim(line), w, /[ \t]+/)
            if (n < 3 || w[1] != "deb") next
            i = 2; opts = ""
            if (substr(w[2], 1, 1) == "[") {
                for (; i <= n; i++) { opts = opts " " w[i]; if (w[i] ~ /\]$/) { i++; break } }
            }
            gsub(/[][]/, " ", opts)
            signed = ""
            m = split(trim(opts), o, /[ \t]+/)
            for (j = 1; j <= m; j++) if (tolower(substr(o[j], 1, 10)) == "signed-by=") signed = substr(o[j], 11)
            comps = ""
            for (j = i + 2; j <= n; j++) comps = comps " " w[j]
            consider("deb", w[i], w[i + 1], comps, signed, "")
        }
        END {
            flush()
            if (best < 0) exit 1
            printf "%s\t%s\t%s\n", bfile, buris, bsigned
        }
    ' "${files[@]}"
}

# Prints the extra sources file for ROOT, or explains what to configure and
# fails.
extra_sources() {
    local root=${1%/} found file uris signed suite
    suite=$(codename "$root")
    if ! found=$(debian_source "$root"); then
        say "found no apt source for Debian's main archive (a 'deb' entry with suite $suite and component main)"
        say "in ${root}/etc/apt/sources.list or ${root}/etc/apt/sources.list.d/*.list, *.sources."
        say "The extra suites ($EXTRA_SUITES) come from the same archive URI, so configure that source"
        say "first, e.g. as /etc/apt/sources.list.d/debian.sources:"
        say "    Types: deb"
        say "    URIs: <the URI of your Debian archive, or of your apt proxy or cache>"
        say "    Suites: $suite $suite-updates"
        say "    Components: main"
        say "    Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg"
        say "(or one line in /etc/apt/sources.list: deb <URI> $suite main), run apt-get update, then this script again."
        return 1
    fi
    IFS=$'\t' read -r file uris signed <<<"$found"
    printf '# Written by pinio (xtask/scripts/install-deps.sh) from the Debian source\n'
    printf '# in %s; rerun that script after changing it.\n' "$file"
    printf 'Types: deb\nURIs: %s\nSuites: %s\nComponents: main\n' "$uris" "$EXTRA_SUITES"
    signed=${signed//$'\037'/$'\n'}
    case $signed in
    '') ;;
    $'\n'*) printf 'Signed-By:%s\n' "$signed" ;; # an inline key, on the lines below
    *) printf 'Signed-By: %s\n' "$signed" ;;
    esac
}

if [ "${1:-}" = --print-sources ]; then
    [ $# -le 2 ] || { say "usage: $0 --print-sources [ROOT]"; exit 2; }
    extra_sources "${2:-/}"
    exit
fi
[ $# -eq 0 ] || { say "usage: $0 [--print-sources [ROOT]]"; exit 2; }

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

# One run at a time: two runs would write the same apt files and queue on
# apt's locks anyway. Children do not keep the lock (9>&-).
LOCK_DIR=/run/lock; [ -d "$LOCK_DIR" ] && [ -w "$LOCK_DIR" ] || LOCK_DIR=${TMPDIR:-/tmp}
if command -v flock >/dev/null; then
    exec 9>>"$LOCK_DIR/pinio-install-deps.lock"
    if ! flock -n 9; then
        say "waiting for another run of this script to finish (lock $LOCK_DIR/pinio-install-deps.lock)"
        flock -w 1800 9 || { say "another run still holds $LOCK_DIR/pinio-install-deps.lock after 30 minutes; giving up"; exit 1; }
    fi
fi

# Writes FILE with CONTENT unless it holds exactly that already; says WHY.
put() {
    local file=$1 content=$2 why=$3 tmp
    if [ -f "$file" ] && [ "$(cat "$file")" = "$content" ]; then
        return 1
    fi
    say "$why"
    # Written beside /etc/apt's .d directories, not in them, then renamed:
    # apt never sees a half-written file.
    tmp=/etc/apt/.$(basename "$file").pinio-new
    printf '%s\n' "$content" | $SUDO tee "$tmp" >/dev/null
    $SUDO mv -f "$tmp" "$file"
}

# bindgen-cli compiles (about 2 minutes of CPU) while apt downloads and
# unpacks: it needs no package from apt to build (clang-sys's `runtime`
# feature loads libclang when bindgen runs, not when it is built).
BINDGEN="$HOME/.cargo/bin/bindgen"
bindgen_pid=""
if ! [ -x "$BINDGEN" ]; then
    say "cargo install bindgen-cli, alongside the packages below (about 2 minutes)"
    cargo install --locked bindgen-cli --version '^0.73' >&2 9>&- &
    bindgen_pid=$!
    # Not left running if a step below fails.
    trap '[ -z "$bindgen_pid" ] || kill "$bindgen_pid" 2>/dev/null || true' EXIT
fi

FRESH_SOURCES=0
want_sources=$(extra_sources /)
want_pin='Package: *
Pin: release n=trixie
Pin-Priority: 50

Package: *
Pin: release n=trixie-backports
Pin-Priority: 50

Package: *
Pin: release n=bookworm-backports
Pin-Priority: 100'
if put "$EXTRA_SOURCES" "$want_sources" "adding bookworm-backports, trixie and trixie-backports from $(awk '/^URIs:/ {sub(/^URIs: */, ""); print}' <<<"$want_sources") ($EXTRA_SOURCES)"; then
    FRESH_SOURCES=1
fi
if put "$EXTRA_PIN" "$want_pin" "pinning trixie and trixie-backports to priority 50 ($EXTRA_PIN)"; then
    FRESH_SOURCES=1
fi

base=(clang-19 lld-19 llvm-19 libclang-19-dev bc bison flex libelf-dev libssl-dev
      cpio busybox-static kmod make xz-utils gcc libc6-dev e2fsprogs fio valgrind util-linux)
for p in "${base[@]}"; do have "$p" || need_pkgs+=("$p"); done
qemu_ok=0
if command -v qemu-system-x86_64 >/dev/null && qemu-system-x86_64 -device help 2>/dev/null | grep -q '"edu"'; then qemu_ok=1; fi
src_ok=0; ls /usr/src/linux-source-"$KERNEL_SERIES".tar.* >/dev/null 2>&1 && src_ok=1
rsrc_ok=0; [ -d /usr/src/rustc-"$RUSTC_VERSION"/library ] && rsrc_ok=1

if [ $FRESH_SOURCES = 1 ] || [ ${#need_pkgs[@]} -gt 0 ] || [ $qemu_ok = 0 ] || [ $src_ok = 0 ] || [ $rsrc_ok = 0 ]; then
    say "apt-get update"
    $APT update >/dev/null 9>&-
fi
if [ ${#need_pkgs[@]} -gt 0 ]; then
    say "installing ${need_pkgs[*]}"
    DEBIAN_FRONTEND=noninteractive $APT install --no-install-recommends "${need_pkgs[@]}" >/dev/null 9>&-
fi
if [ $qemu_ok = 0 ]; then
    say "installing qemu-system-x86 from bookworm-backports"
    DEBIAN_FRONTEND=noninteractive $APT install --no-install-recommends -t bookworm-backports qemu-system-x86 >/dev/null 9>&-
fi
if [ $src_ok = 0 ]; then
    say "installing linux-source-$KERNEL_SERIES (arch all) from trixie-backports"
    DEBIAN_FRONTEND=noninteractive $APT install --no-install-recommends -t trixie-backports "linux-source-$KERNEL_SERIES" >/dev/null 9>&-
fi
if [ $rsrc_ok = 0 ]; then
    ver=$(apt-cache madison rust-src | awk -v v="$RUSTC_VERSION" '$3 ~ "^"v"\\+" {print $3; exit}')
    if [ -z "$ver" ]; then
        say "no Debian rust-src package matches rustc $RUSTC_VERSION exactly; the kernel needs them equal"
        exit 1
    fi
    say "installing rust-src=$ver (arch all) to match rustc $RUSTC_VERSION"
    DEBIAN_FRONTEND=noninteractive $APT install --no-install-recommends "rust-src=$ver" >/dev/null 9>&-
fi

if [ -n "$bindgen_pid" ]; then
    wait "$bindgen_pid" || { bindgen_pid=""; say "cargo install bindgen-cli failed (see above)"; exit 1; }
    bindgen_pid=""
fi
say "dependencies present"
