#!/usr/bin/env bash
# Swaps this checkout into a real Zotonic node built by ../shared/real-zotonic (the README's
# install path: ZOTONIC_APPS + rebar3 compile), then reloads it the way an operator would:
# z:ld() and a restart of mod_backup in the site. Used by tools/zotonic_smoke.sh.
#
#   tools/zotonic_swap.sh ZOTONIC_TARGET [SITE]
#
# The copy lives in ZOTONIC_TARGET/mod_backup_swap/zotonic_mod_backup (Zotonic's apps read
# ../../VERSION, so the swap dir must sit directly under the target); its cargo target dir is
# kept between runs so a rebuild is incremental.
set -euo pipefail
T=$(realpath "${1:?usage: $0 ZOTONIC_TARGET [SITE]}")
SITE=${2:-testsite}
HERE=$(cd "$(dirname "$0")/.." && pwd)
SWAP=$T/mod_backup_swap
APP=$SWAP/zotonic_mod_backup
[ -x "$T/zrpc.sh" ] && [ -d "$T/zotonic" ] || { echo "$T is not a real-zotonic target (no zrpc.sh/zotonic)" >&2; exit 2; }

mkdir -p "$APP"
# Fresh sources each time (files deleted here must go there too); the build outputs stay.
find "$APP" -mindepth 1 -maxdepth 1 ! -name target ! -name priv -exec rm -rf {} +
rm -rf "$APP/priv/templates" "$APP/priv/dispatch" "$APP/priv/lib"
( cd "$HERE" && git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf - ) | tar -xf - -C "$APP"

cd "$T/zotonic"
rm -rf _build/default/lib/zotonic_mod_backup
ZOTONIC_APPS=$SWAP ./rebar3 compile > "$SWAP/compile.log" 2>&1 || { tail -40 "$SWAP/compile.log"; exit 1; }
readlink _build/default/lib/zotonic_mod_backup/src | grep -q mod_backup_swap
EXPR='z:ld()' "$T/zrpc.sh" > /dev/null
EXPR="z_module_manager:restart(mod_backup, z:c($SITE))" "$T/zrpc.sh" > /dev/null
sleep 2
echo "swapped in: $(EXPR='{backup_nif:build_id(), code:which(mod_backup)}' "$T/zrpc.sh" | tr -d '\n')"
