#!/bin/sh
# Installs what zotonic_mod_backup needs on Debian 12 (as root) and starts PostgreSQL.
# Idempotent and quiet when everything is already there. Rust (cargo) is not installed here:
# get it from https://rustup.rs first.
set -eu

packages="erlang-nox erlang-dev erlang-eunit erlang-common-test erlang-tools rebar3 \
postgresql postgresql-client gzip zstd pigz tar python3"

missing=""
for p in $packages; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "setup: installing$missing" >&2
    if [ "$(id -u)" -ne 0 ]; then
        echo "setup: run as root (or install:$missing)" >&2
        exit 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
    [ -x "$HOME/.cargo/bin/cargo" ] || { echo "setup: cargo not found; install Rust from https://rustup.rs" >&2; exit 1; }
fi

# Start Debian's cluster when it is installed but stopped (CI and fresh machines).
if command -v pg_lsclusters >/dev/null 2>&1; then
    pg_lsclusters -h 2>/dev/null | while read -r ver name port status _rest; do
        [ "$status" = online ] || pg_ctlcluster "$ver" "$name" start >/dev/null 2>&1 || true
    done
fi
