#!/bin/sh
# The README's first command. On a fresh Debian 12 machine, as root, with Rust installed:
#   sh tools/demo.sh [--size MiB]        (default 500)
# 1. installs what is missing (tools/setup.sh) and builds (rebar3 as test compile, which builds
#    the NIF and the zbackup CLI with cargo);
# 2. finds or makes a PostgreSQL server (tools/pg_env.sh; a throwaway cluster is removed at exit);
# 3. generates a media tree of --size MiB once (tools/gen_tree.py, kept in .demo/);
# 4. runs zb_demo (demo/zb_demo.erl) in the test host: a site filled with that tree,
#    a couple of thousand resources, edges and an edit history; the stock method timed; a full
#    backup by mod_backup with a progress bar; the set printed and verified; restored into a
#    second site and compared table by table and file by file; revision storage compared; one
#    summary table.
# Re-running reuses the build and the tree; both demo sites are dropped and made again.
set -eu
cd "$(dirname "$0")/.."
[ -x "$HOME/.cargo/bin/cargo" ] && PATH="$HOME/.cargo/bin:$PATH"
export PATH
export REBAR_COLOR=none

size=500
while [ $# -gt 0 ]; do
    case "$1" in
        --size) [ $# -ge 2 ] || { echo "usage: sh tools/demo.sh [--size MiB]" >&2; exit 2; }
                size=$2; shift 2 ;;
        -h|--help) echo "usage: sh tools/demo.sh [--size MiB]   (default 500)"; exit 0 ;;
        *) echo "usage: sh tools/demo.sh [--size MiB]" >&2; exit 2 ;;
    esac
done
case "$size" in
    ''|*[!0-9]*) echo "demo.sh: --size takes a whole number of MiB" >&2; exit 2 ;;
esac

start=$(date +%s)
elapsed() { echo "$(( $(date +%s) - start )) s"; }

echo "==> setup: Debian packages and PostgreSQL (tools/setup.sh)"
sh tools/setup.sh

echo "==> build: rebar3 as test compile (cargo builds the NIF and zbackup; a first build takes minutes)"
log=$(mktemp /tmp/zb-demo-build.XXXXXX)
if ! rebar3 as test compile >"$log" 2>&1; then
    cat "$log"; rm -f "$log"
    echo "demo.sh: the build failed" >&2
    exit 1
fi
rm -f "$log"
echo "    built ($(elapsed) so far)"

eval "$(sh tools/pg_env.sh)"
trap 'sh tools/pg_env.sh stop' EXIT
export PGHOST PGPORT PGUSER PGPASSWORD

demo=.demo
tree=$demo/archive-$size
mkdir -p "$demo"
if [ ! -f "$tree.complete" ]; then
    echo "==> generating a $size MiB media tree in $tree (once; JPEG/MP4-like and HTML files)"
    rm -rf "$tree"
    python3 tools/gen_tree.py "$tree" "$size"
    touch "$tree.complete"
    echo "    generated ($(elapsed) so far)"
else
    echo "==> reusing the $size MiB media tree in $tree"
fi

tty=0
[ -t 1 ] && tty=1
lib=_build/test/lib/zotonic_mod_backup
ZB_DEMO_TTY=$tty erl -noshell +A 8 \
    -pa "$lib/ebin" \
    -run zb_demo main "$tree" "$demo/run"

echo "==> demo done in $(elapsed) (log: $demo/run/demo.log)"
