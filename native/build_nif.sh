#!/bin/sh
# Builds the backup_nif cdylib and the zbackup CLI with cargo and installs them in priv/native/.
# Run from the app dir (rebar3 runs hooks there).
#
# Each build is named after a hash of its sources (or $BACKUP_NIF_BUILD when set): the library
# becomes priv/native/backup_nif_<build>.so with the Erlang module name backup_nif_<build>, and
# erl_src/support/backup_nif_build.hrl tells backup_nif.erl which build to load. A running VM
# that reloads backup_nif (z:ld(), Zotonic's file watcher) then loads the new library beside the
# old one instead of upgrading it in place, which rustler libraries cannot do. Libraries are
# removed before they are replaced, never overwritten (a running VM may have them mapped), and
# the three newest builds are kept so a VM that still runs older code can find its library.
#
# With --library-only it builds the library as above and prints `library=<path>` instead of
# installing anything (backup_nif_reload_SUITE makes a second build this way).
set -eu
library_only=false
[ "${1:-}" = --library-only ] && library_only=true
cd "$(dirname "$0")/.."
if ! command -v cargo >/dev/null 2>&1; then
    echo "build_nif.sh: cargo not found; install Rust (https://rustup.rs) to build the NIF" >&2
    exit 1
fi

# release (the default: what a site runs) or dev: tools/test.sh builds the dev profile, which
# shares every compiled crate with its `cargo test --workspace` (dependencies optimised, see
# Cargo.toml), instead of compiling them all again for release: minutes of CI.
profile=${BACKUP_NIF_PROFILE:-release}

if [ -z "${BACKUP_NIF_BUILD:-}" ]; then
    BACKUP_NIF_BUILD=$( { rustc -V; echo "$profile"; cat Cargo.toml Cargo.lock;
        find native -name target -prune -o -type f \( -name '*.rs' -o -name Cargo.toml \) -print \
            | LC_ALL=C sort | xargs cat; } | sha256sum | cut -c1-12)
fi
export BACKUP_NIF_BUILD

case "$profile" in
    release)
        # Two builds: together cargo would unify features and give the NIF backup_core's `cli`
        # feature (the zstd writer and the fuzz harness), which only zbackup asks for.
        cargo build --release --locked -p backup_nif
        $library_only || cargo build --release --locked -p zbackup
        out=${CARGO_TARGET_DIR:-target}/release ;;
    dev)
        # One build with the workspace's features, as `cargo test --workspace` compiled them
        # (the NIF then also holds the `cli` code, which no NIF function reaches).
        cargo build --locked --workspace
        out=${CARGO_TARGET_DIR:-target}/debug ;;
    *) echo "build_nif.sh: BACKUP_NIF_PROFILE is release or dev, not $profile" >&2; exit 1 ;;
esac
case "$(uname -s)" in
    Darwin) lib=$out/libbackup_nif.dylib ;;
    *) lib=$out/libbackup_nif.so ;;
esac
if $library_only; then
    echo "library=$lib"
    exit 0
fi
mkdir -p priv/native
so=priv/native/backup_nif_$BACKUP_NIF_BUILD.so
rm -f "$so" priv/native/zbackup priv/native/backup_nif.so
cp "$lib" "$so"
cp "$out/zbackup" priv/native/zbackup
# Keep the three newest builds.
ls -t priv/native/backup_nif_*.so | tail -n +4 | while read -r old; do rm -f "$old"; done

hrl=erl_src/support/backup_nif_build.hrl
new="%% Written by native/build_nif.sh: the NIF build that backup_nif loads (not in git).
-define(BACKUP_NIF_BUILD, <<\"$BACKUP_NIF_BUILD\">>)."
# Rewritten only when it changes, so an unchanged build recompiles nothing. The module that
# includes it is touched too: rebar3's header tracking missed the change when a swap had
# replaced the sources under an existing _build (the real node's reload check then loaded the
# old build), and a source newer than its beam is always recompiled.
if [ ! -f "$hrl" ] || [ "$(cat "$hrl")" != "$new" ]; then
    printf '%s\n' "$new" > "$hrl.tmp"
    mv "$hrl.tmp" "$hrl"
    touch erl_src/support/backup_nif.erl
fi
