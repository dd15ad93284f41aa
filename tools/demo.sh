#!/bin/sh
# The main job, from a fresh Debian 12 machine (as root, with Rust installed): installs what is
# missing, builds the NIF and the zbackup CLI, generates a media tree (default 256 MiB of
# JPEG-like and HTML-like files), archives it with the engine next to GNU tar -czf, verifies,
# lists and restores it, and prints what it made.
#   sh tools/demo.sh [--size MiB]
# Re-running reuses the build and the generated tree (kept in .demo/).
set -eu
cd "$(dirname "$0")/.."
[ -x "$HOME/.cargo/bin/cargo" ] && PATH="$HOME/.cargo/bin:$PATH"
export PATH

size=256
while [ $# -gt 0 ]; do
    case "$1" in
        --size) size=$2; shift 2 ;;
        *) echo "usage: sh tools/demo.sh [--size MiB]" >&2; exit 2 ;;
    esac
done

sh tools/setup.sh
echo "==> building the NIF and zbackup (cargo --release --locked)"
sh native/build_nif.sh >/dev/null 2>&1 || sh native/build_nif.sh
zb=priv/native/zbackup

demo=.demo
tree=$demo/archive-$size
mkdir -p "$demo"
if [ ! -f "$tree.complete" ]; then
    echo "==> generating a $size MiB media tree in $tree"
    rm -rf "$tree"
    python3 tools/gen_tree.py "$tree" "$size"
    touch "$tree.complete"
fi
files=$(find "$tree" -type f | wc -l)
echo "    $files files, $(du -sh "$tree" | cut -f1)"

t() { python3 -c 'import sys,time,subprocess; t=time.time(); subprocess.run(sys.argv[1:], check=True); print("%.2f" % (time.time()-t))' "$@"; }

echo "==> zbackup archive (parallel gzip, incompressible chunks stored)"
rm -f "$demo/media.tar.gz" "$demo/gnu.tar.gz"
ours_s=$(t sh -c "$zb archive $tree $demo/media.tar.gz > $demo/summary.json")
cat "$demo/summary.json"
echo "==> GNU tar -czf of the same tree"
gnu_s=$(t tar -czf "$demo/gnu.tar.gz" -C "$tree" .)
ours_b=$(stat -c %s "$demo/media.tar.gz"); gnu_b=$(stat -c %s "$demo/gnu.tar.gz")

echo "==> zbackup verify"
$zb verify "$demo/media.tar.gz"
echo "==> zbackup list (first entries)"
$zb list "$demo/media.tar.gz" > "$demo/list.jsonl"; head -n 4 "$demo/list.jsonl"
echo "==> restore with zbackup extract and compare with the source (diff -r)"
rm -rf "$demo/restored"
$zb extract "$demo/media.tar.gz" "$demo/restored" >/dev/null
diff -r "$tree" "$demo/restored" && echo "    identical"
echo "==> GNU tar reads our archive too (tar -tzf | wc -l): $(tar -tzf "$demo/media.tar.gz" | wc -l) entries"

python3 - "$ours_s" "$gnu_s" "$ours_b" "$gnu_b" <<'PY'
import sys
o, g, ob, gb = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
print()
print("%-22s %10s %14s" % ("", "seconds", "bytes"))
print("%-22s %10.2f %14d" % ("zbackup archive", o, ob))
print("%-22s %10.2f %14d" % ("tar -czf", g, gb))
print("%-22s %9.1fx %13.3fx" % ("ours vs tar -czf", g / o if o else 0, ob / gb if gb else 0))
PY
