#!/bin/sh
# install-deps.sh - install the Debian packages the build and tests need,
# only when they are missing (so it is cheap to run before every build).
# Needs root (or sudo) only when something is actually missing.
set -e
need=""
command -v cc >/dev/null 2>&1 || need="$need gcc libc6-dev"
command -v make >/dev/null 2>&1 || need="$need make"
command -v pkg-config >/dev/null 2>&1 || need="$need pkg-config"
if ! pkg-config --exists check 2>/dev/null; then need="$need check"; fi
command -v valgrind >/dev/null 2>&1 || need="$need valgrind"
for p in $WEFT_DEPS_EXTRA; do
    case "$p" in
    golang-go) command -v go >/dev/null 2>&1 || need="$need golang-go" ;;
    python3) command -v python3 >/dev/null 2>&1 || need="$need python3" ;;
    *) dpkg -s "$p" >/dev/null 2>&1 || need="$need $p" ;;
    esac
done
[ -z "$need" ] && exit 0
echo "install-deps: installing$need" >&2
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq $need >/dev/null
