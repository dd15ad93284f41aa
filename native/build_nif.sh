#!/bin/sh
# Builds the backup_nif cdylib with cargo and installs it as priv/native/backup_nif.so.
# Run from the app dir (rebar3 runs hooks there). The old library is removed before the copy:
# overwriting a .so that a running VM has mapped in place would corrupt that VM.
set -eu
cd "$(dirname "$0")/.."
if ! command -v cargo >/dev/null 2>&1; then
    echo "build_nif.sh: cargo not found; install Rust (https://rustup.rs) to build the NIF" >&2
    exit 1
fi
cargo build --release --locked -p backup_nif -p zbackup
mkdir -p priv/native
case "$(uname -s)" in
    Darwin) lib=target/release/libbackup_nif.dylib ;;
    *) lib=target/release/libbackup_nif.so ;;
esac
rm -f priv/native/backup_nif.so priv/native/zbackup
cp "$lib" priv/native/backup_nif.so
cp target/release/zbackup priv/native/zbackup
