# Shared by ./run and ./test: install what is missing (Debian 12 packages only) and
# configure + build with CMake. Sourced, not run.

BUILD_PACKAGES="g++ cmake ninja-build pkg-config ccache libboost1.81-dev libssl-dev
  libc-ares-dev libtomlplusplus-dev zlib1g-dev libidn2-dev"
TEST_PACKAGES="libgtest-dev postfix swaks python3 python3-aiosmtpd python3-dnslib
  python3-cryptography unbound nsd ldnsutils openssl systemd
  pflogsumm clang libclang-rt-14-dev"

missing_packages() {
    local missing=""
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
            missing="$missing $p"
    done
    echo "$missing"
}

ensure_packages() {
    local missing
    missing=$(missing_packages "$@")
    [ -z "$missing" ] && return 0
    local sudo=""
    if [ "$(id -u)" != 0 ]; then
        command -v sudo >/dev/null || { echo "need root to install:$missing" >&2; return 1; }
        sudo=sudo
    fi
    echo "installing:$missing" >&2
    # Postfix would otherwise ask how to configure the system's mail; we only use its
    # binaries and private instances.
    echo "postfix postfix/main_mailer_type select No configuration" | $sudo debconf-set-selections
    $sudo apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >&2
}

build() {  # build DIR TYPE [extra cmake args]
    local dir=$1 type=$2
    shift 2
    cmake -S "$ROOT" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE="$type" "$@" >/dev/null
    # ccache keys on paths relative to the checkout, so a second clone (a fresh-clone
    # check of main beside the work tree) reuses the first one's objects; their line
    # tables then name the first clone's folder, which nothing depends on.
    CCACHE_BASEDIR="$ROOT" CCACHE_NOHASHDIR=true cmake --build "$dir" -j "$(nproc)"
}
