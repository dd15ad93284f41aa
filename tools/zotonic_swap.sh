#!/usr/bin/env bash
# Builds mod_backup into a real Zotonic node built by ../shared/real-zotonic, the README's way
# (ZOTONIC_APPS + rebar3 compile), and loads it the way the README tells an operator to:
# mod_backup deactivated in the site, the build, z:ld(), mod_backup activated. Used by
# tools/zotonic_smoke.sh.
#
#   tools/zotonic_swap.sh [--in-place | --stock] ZOTONIC_TARGET [SITE]
#
#   (default)   swap this checkout in: mod_backup deactivated in SITE, a fresh copy of the
#               sources in ZOTONIC_TARGET/mod_backup_swap/zotonic_mod_backup (Zotonic's apps read
#               ../../VERSION, so it must sit directly under the target), the app's _build dir
#               removed, ZOTONIC_APPS=... rebar3 compile, z:ld(), mod_backup activated
#   --in-place  upgrade in place: the same copy and compile, without removing the _build dir,
#               then z:ld() only (BACKUP_NIF_BUILD passes through to native/build_nif.sh)
#   --stock     go back to Zotonic's own app: deactivated, the _build dir removed, rebar3
#               compile without ZOTONIC_APPS, z:ld(), activated
#
# Deactivated first, as the README says: the two apps' gen_server states differ, and a module
# process that outlives the code load meets the other app's code (the stock terminate/2 on our
# state: badrecord; the file watcher loads new beams by itself within seconds of a build).
# While it builds, the node's file handler ignores the app's directories. Zotonic's file
# watcher polls _build/default/lib and, when an .hrl there changes, runs its own
# `./rebar3 compile` with the node's environment, i.e. without ZOTONIC_APPS: run while the
# app's _build dir is gone, that links Zotonic's stock app back in, racing this build (seen
# once: the stock module ran for 30 s). Zotonic holds its watcher off its own builds the same
# way (zotonic_filehandler_handler:ignore_dir/2). The cargo target dir of the copy is kept
# between runs, so a rebuild is incremental. The last line says what the node runs.
set -euo pipefail
MODE=swap
case "${1:-}" in
    --in-place) MODE=in-place; shift ;;
    --stock) MODE=stock; shift ;;
esac
T=$(realpath "${1:?usage: $0 [--in-place | --stock] ZOTONIC_TARGET [SITE]}")
SITE=${2:-testsite}
HERE=$(cd "$(dirname "$0")/.." && pwd)
SWAP=$T/mod_backup_swap
APP=$SWAP/zotonic_mod_backup
STOCK=$T/zotonic/apps/zotonic_mod_backup
LIB=$T/zotonic/_build/default/lib/zotonic_mod_backup
[ -x "$T/zrpc.sh" ] && [ -d "$T/zotonic" ] || { echo "$T is not a real-zotonic target (no zrpc.sh/zotonic)" >&2; exit 2; }
rpc() { EXPR="$1" "$T/zrpc.sh"; }

ignore() {
    rpc "[ zotonic_filehandler_handler:ignore_dir(D, $1) || D <- [\"$LIB\", \"$APP\", \"$STOCK\"] ]" > /dev/null
}
# The watcher drops what it sees while the dirs are ignored; it must have looked once after the
# last change before they are watched again (a scanner looks every `interval` ms).
settle_then_watch() {
    local ms
    ms=$(rpc "try zotonic_filewatcher_monitor:get_interval() catch _:_ -> 0 end")
    case "$ms" in *[!0-9]*|'') ms=0 ;; esac
    sleep $(( ms / 1000 + 2 ))
    ignore false
}
ignore true
trap settle_then_watch EXIT
# A compile the watcher started before the ignore must end before this one starts.
for _ in $(seq 1 180); do
    [ "$(rpc 'buffalo:status(compile_all_task)')" = "{error,notfound}" ] && break
    sleep 1
done

status() { rpc "proplists:get_value(mod_backup, z_module_manager:get_modules_status(z:c($SITE)))"; }
if [ "$MODE" != in-place ]; then
    rpc "z_module_manager:deactivate(mod_backup, z:c($SITE))" > /dev/null
    for _ in $(seq 1 30); do [ "$(status)" != running ] && break; sleep 1; done
fi

cd "$T/zotonic"
if [ "$MODE" = stock ]; then
    rm -rf "$LIB"
    env -u ZOTONIC_APPS ./rebar3 compile > "$SWAP/compile.log" 2>&1 || { tail -40 "$SWAP/compile.log"; exit 1; }
    want_src=$STOCK/src
    want_schema=$(sed -n 's/^-mod_schema(\([0-9]*\)).*/\1/p' "$STOCK/src/mod_backup.erl")
else
    mkdir -p "$APP"
    # Fresh sources each time (files deleted here must go there too); the build outputs stay.
    find "$APP" -mindepth 1 -maxdepth 1 ! -name target ! -name priv -exec rm -rf {} +
    rm -rf "$APP/priv/templates" "$APP/priv/dispatch" "$APP/priv/lib"
    ( cd "$HERE" && git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf - ) | tar -xf - -C "$APP"
    [ "$MODE" = in-place ] || rm -rf "$LIB"
    ZOTONIC_APPS=$SWAP ./rebar3 compile > "$SWAP/compile.log" 2>&1 || { tail -40 "$SWAP/compile.log"; exit 1; }
    want_src=$APP/src
    want_schema=$(sed -n 's/^-mod_schema(\([0-9]*\)).*/\1/p' "$HERE/erl_src/mod_backup.erl")
fi
[ "$(realpath "$LIB/src")" = "$(realpath "$want_src")" ] || { echo "the build linked $(readlink "$LIB/src"), not $want_src" >&2; exit 1; }

rpc 'z:ld()' > /dev/null
[ "$MODE" = in-place ] || rpc "z_module_manager:activate(mod_backup, z:c($SITE))" > /dev/null
for _ in $(seq 1 30); do [ "$(status)" = running ] && break; sleep 1; done
loaded=$(rpc "{code:which(mod_backup), proplists:get_value(mod_schema, mod_backup:module_info(attributes)), proplists:get_value(mod_backup, z_module_manager:get_modules_status(z:c($SITE)))}" | tr -d ' \n')
[ "$loaded" = "{\"$LIB/ebin/mod_backup.beam\",[$want_schema],running}" ] \
    || { echo "the node runs $loaded, not the mod_backup of $want_src (schema $want_schema)" >&2; exit 1; }
if [ "$MODE" = stock ]; then
    echo "stock module back: $loaded"
else
    echo "swapped in: $(rpc '{backup_nif:build_id(), code:which(mod_backup)}' | tr -d '\n')"
fi
