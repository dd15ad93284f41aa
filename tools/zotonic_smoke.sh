#!/usr/bin/env bash
# Checks this checkout in a real Zotonic 1.0 node, the way an operator uses it. Not part of CI:
# it needs a node built by ../shared/real-zotonic/build.sh (site testsite, admin/admin, HTTPS on
# localhost:8443), running.
#
#   tools/zotonic_smoke.sh ZOTONIC_TARGET
#
# Steps (each prints PASS or FAIL; the exit status is the number of failures):
#   swap      tools/zotonic_swap.sh: ZOTONIC_APPS + rebar3 compile, z:ld(), restart mod_backup;
#             then Zotonic's own compile (z:m()'s) keeps this module
#   cli       bin/zotonic backup testsite start, then list
#   download  an admin session downloads the set's database dump (200, valid gzip);
#             an anonymous one gets 403
#   decrypt   with encryption on, a new set; bin/zotonic decrypt of its .enc dump gives a gzip
#   diff      a page saved 3 times: headless Chromium opens /admin/backup/<id>, picks the
#             oldest version, and the diff (<del>/<ins>) and the revert button show
#   back      the README's way back: deactivated, revisions_downgrade/1, Zotonic's stock app
#             compiled, z:ld(), activated: it runs (schema as its own), reads every revision of the diff step's
#             page and shows its admin page; then this module swapped in again reads them too
#   reload    a second build of the NIF (other build id) compiled into the node and z:ld():
#             the new build is loaded and a backup completes on it
#   restore   a [database, files] restore through bin/zotonic (encrypted set) brings back a
#             page deleted after the backup, keeps a file uploaded after it, leaves no .tmp,
#             and every module that ran before it runs after it
#   log       the node's error.log got no line during the run
#
# The diff step needs chromium (apt-get install chromium) and Node.js with playwright-core,
# installed into $ZOTONIC_TARGET/smoke-node on first use (npm). Chromium is held to TLS 1.2:
# its TLS 1.3 websocket handshake to this node's Erlang ssl listener is reset (seen with the
# stock module too), and the admin pages need the MQTT websocket.
set -uo pipefail
T=$(realpath "${1:?usage: $0 ZOTONIC_TARGET}")
SITE=testsite
URL=https://localhost:8443
HERE=$(cd "$(dirname "$0")/.." && pwd)
Z=$T/zotonic
# Zotonic's CLI reads its config from $HOME; cargo and rustup keep theirs.
export RUSTUP_HOME=${RUSTUP_HOME:-$HOME/.rustup} CARGO_HOME=${CARGO_HOME:-$HOME/.cargo}
export HOME=$T/home ERL_EPMD_ADDRESS=127.0.0.1
WORK=$(mktemp -d /tmp/zsmoke.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
FAILS=0
ERRLOG=$HOME/.cache/zotonic/log/error.log
errlog_start=$(stat -c %s "$ERRLOG" 2>/dev/null || echo 0)

pass() { echo "PASS $1: $2"; }
fail() { echo "FAIL $1: $2"; FAILS=$((FAILS + 1)); }
rpc() { EXPR="$1" "$T/zrpc.sh"; }
ctx="z_acl:sudo(z:c($SITE))"
# Zotonic identifies uploads with ImageMagick's identify; without it the site's own schema
# (testsite's learning.jpg) fails to install and its module stays down, restore or not.
command -v identify >/dev/null || echo "NOTE: no ImageMagick 'identify' here (apt-get install imagemagick): site modules that install images fail"

wait_idle() {
    local i
    for i in $(seq 1 300); do
        [ "$(rpc "mod_backup:backup_in_progress($ctx)")" = false ] && return 0
        sleep 1
    done
    return 1
}
newest() { # newest set's KEY (database/files/config_files) file name
    rpc "begin {ok, E} = backup_restore:newest(backup_create:read_admin_file($ctx)), io:format(\"~s\", [maps:get(<<\"$1\">>, E)]), ok end" | head -c -3
}
backup_dir() { rpc "io:format(\"~s\", [backup_create:dir($ctx)])" | head -c -3; }
admin_cookie() {
    curl -sk -c "$WORK/cookies" -b "$WORK/cookies" -o /dev/null "$URL/"
    curl -sk -c "$WORK/cookies" -b "$WORK/cookies" -H 'Content-Type: application/json' \
        -d '{"cmd":"logon","username":"admin","password":"admin"}' "$URL/zotonic-auth" -o /dev/null -w '%{http_code}'
}

echo "=== swap"
if out=$("$HERE/tools/zotonic_swap.sh" "$T" "$SITE" 2>&1); then
    pass swap "$(echo "$out" | tail -1)"
else
    fail swap "$out"; exit 1
fi
# An operator's z:m(): Zotonic runs ./rebar3 compile with the node's environment.
make=$(rpc "zotonic_filehandler:compile_all_sync()")
which=$(rpc "code:which(mod_backup)")
if [ "$make" = ok ] && [ "$which" = "\"$Z/_build/default/lib/zotonic_mod_backup/ebin/mod_backup.beam\"" ] \
    && [ "$(realpath "$Z/_build/default/lib/zotonic_mod_backup/src")" = "$(realpath "$T/mod_backup_swap/zotonic_mod_backup/src")" ]; then
    pass swap "z:m()'s compile keeps this module"
else
    fail swap "after z:m()'s compile ($make): $which, src -> $(readlink "$Z/_build/default/lib/zotonic_mod_backup/src")"
fi

echo "=== cli: bin/zotonic backup $SITE start / list"
out=$(cd "$Z" && bin/zotonic backup "$SITE" start 2>&1)
if echo "$out" | grep -q "Backup started" && wait_idle; then
    list=$(cd "$Z" && bin/zotonic backup "$SITE" list 2>&1)
    echo "$list" | head -12
    if echo "$list" | grep -q "is_database_present: true"; then pass cli "started and listed"; else fail cli "list: $list"; fi
else
    fail cli "$out"
fi

echo "=== download"
db=$(newest database)
code=$(admin_cookie)
admin=$(curl -sk -b "$WORK/cookies" -o "$WORK/dl.gz" -w '%{http_code}' "$URL/backup/download/$db")
anon=$(curl -sk -o /dev/null -w '%{http_code}' "$URL/backup/download/$db")
if [ "$code" = 200 ] && [ "$admin" = 200 ] && gzip -t "$WORK/dl.gz" 2>/dev/null && [ "$anon" = 403 ]; then
    pass download "$db: admin 200 ($(stat -c %s "$WORK/dl.gz") bytes, gzip -t ok), anonymous $anon"
else
    fail download "$db: logon $code, admin $admin, anonymous $anon"
fi

echo "=== decrypt: encrypted set, bin/zotonic decrypt"
rpc "m_config:set_value(mod_backup, encrypt_backups, <<\"true\">>, $ctx)" > /dev/null
sleep 2
pw=$(rpc "io:format(\"~s\", [backup_config:encrypt_password($ctx)])" | head -c -3)
rpc "mod_backup:start_backup(true, $ctx)" > /dev/null
wait_idle
enc=$(newest database)
dir=$(backup_dir)
out=$(cd "$Z" && bin/zotonic decrypt "$pw" "$dir/$enc" "$WORK/decrypted.sql.gz" 2>&1)
if [ "${enc%.enc}" != "$enc" ] && gzip -t "$WORK/decrypted.sql.gz" 2>/dev/null; then
    pass decrypt "$enc -> $(stat -c %s "$WORK/decrypted.sql.gz") bytes, gzip -t ok"
else
    fail decrypt "$enc: $out"
fi
wrong=$(cd "$Z" && bin/zotonic decrypt not-the-password "$dir/$enc" "$WORK/wrong.sql.gz" 2>&1)
if echo "$wrong" | grep -q "Wrong password" && [ ! -e "$WORK/wrong.sql.gz" ]; then
    pass decrypt "a wrong password is reported, nothing written"
else
    fail decrypt "wrong password: $wrong"
fi

echo "=== diff: revision page in headless Chromium"
id=$(rpc "begin C = $ctx, {ok, Id} = m_rsc:insert(#{<<\"category_id\">> => text, <<\"title\">> => <<\"Smoke diff\">>, <<\"body\">> => <<\"<p>The first body text.</p>\">>, <<\"is_published\">> => true}, C), {ok, _} = m_rsc:update(Id, #{<<\"body\">> => <<\"<p>The second body text.</p>\">>}, C), {ok, _} = m_rsc:update(Id, #{<<\"title\">> => <<\"Smoke diff, retitled\">>}, C), Id end")
if command -v chromium >/dev/null && command -v node >/dev/null; then
    mkdir -p "$T/smoke-node"
    [ -d "$T/smoke-node/node_modules/playwright-core" ] || (cd "$T/smoke-node" && npm install --silent playwright-core@1 >/dev/null 2>&1)
    cp "$HERE/tools/zotonic_smoke_revdiff.js" "$T/smoke-node/revdiff.js"
    out=$(cd "$T/smoke-node" && timeout 180 node revdiff.js "$URL" "$id" "$WORK/revdiff.png" 2>&1)
    echo "$out" | sed -n '1,6p' | cut -c1-400
    if echo "$out" | grep -q "^DIFF:.*<del>.*<ins>" && echo "$out" | grep -q "^REVERT: yes" && ! echo "$out" | grep -q "^ERRORS:.* 404 "; then
        pass diff "page $id: changes marked, revert offered, no 404"
    else
        fail diff "page $id"
    fi
else
    fail diff "needs chromium and node (apt-get install chromium nodejs npm)"
fi

echo "=== back: revisions_downgrade/1, the stock module, then this one again"
revs="begin C = $ctx, [ begin {ok, #{<<\"data\">> := D}} = m_backup_revision:get_revision(element(1, R), C), is_map(D) end || R <- m_backup_revision:list_revisions($id, C) ] end"
before=$(rpc "$revs")
rpc "z_module_manager:deactivate(mod_backup, $ctx)" > /dev/null
down=$(rpc "mod_backup:revisions_downgrade($ctx)")
if out=$("$HERE/tools/zotonic_swap.sh" --stock "$T" "$SITE" 2>&1); then
    stock_revs=$(rpc "$revs")
    schema=$(rpc "z_db:q1(\"select schema_version from module where name = 'mod_backup'\", $ctx)")
    admin_cookie > /dev/null
    page=$(curl -sk -b "$WORK/cookies" -o /dev/null -w '%{http_code}' "$URL/admin/backup")
    if out2=$("$HERE/tools/zotonic_swap.sh" "$T" "$SITE" 2>&1); then
        after=$(rpc "$revs")
    else
        after="swap failed: $out2"
    fi
    if echo "$down" | grep -q "errors => 0" && [ "$stock_revs" = "$before" ] && [ "$schema" = 4 ] \
        && [ "$page" = 200 ] && [ "$after" = "$before" ] && echo "$before" | grep -q "true,true"; then
        pass back "downgrade $down; $(echo "$out" | tail -1); page $id's revisions $stock_revs, schema $schema, /admin/backup $page; this module again: $(echo "$out2" | tail -1), revisions $after"
    else
        fail back "downgrade $down; revisions ours $before, stock $stock_revs, ours again $after; schema $schema; /admin/backup $page"
    fi
else
    fail back "to stock: $out"
    "$HERE/tools/zotonic_swap.sh" "$T" "$SITE" > /dev/null 2>&1 || { fail back "could not swap this module in again"; exit 1; }
fi

echo "=== reload: a second NIF build, z:ld()"
old_build=$(rpc "backup_nif:build_id()")
new_id="smoke$(date +%s)"
if BACKUP_NIF_BUILD=$new_id "$HERE/tools/zotonic_swap.sh" --in-place "$T" "$SITE" > "$WORK/rebuild.log" 2>&1; then
    now_build=$(rpc "backup_nif:build_id()")
    rpc "mod_backup:start_backup(false, $ctx)" > /dev/null
    wait_idle
    status=$(rpc "begin {ok, E} = backup_restore:newest(backup_create:read_admin_file($ctx)), is_binary(maps:get(<<\"database_hash\">>, E)) andalso maps:get(<<\"timestamp\">>, E) > erlang:system_time(second) - 120 end")
    if [ "$now_build" = "<<\"$new_id\">>" ] && [ "$status" = true ]; then
        pass reload "build $old_build -> $now_build after z:ld(); a backup completed on it"
    else
        fail reload "build $old_build -> $now_build, backup registered: $status"
    fi
else
    fail reload "rebuild failed: $(tail -5 "$WORK/rebuild.log")"
fi

echo "=== restore: [database, files] through bin/zotonic, encrypted set"
pid=$(rpc "begin {ok, Id} = m_rsc:insert(#{<<\"category_id\">> => text, <<\"title\">> => <<\"Smoke restore\">>}, $ctx), Id end")
rpc "mod_backup:start_backup(true, $ctx)" > /dev/null
wait_idle
name=$(rpc "begin {ok, E} = backup_restore:newest(backup_create:read_admin_file($ctx)), [N] = [ K || {K, V} <- maps:to_list(backup_create:read_admin_file($ctx)), V =:= E ], io:format(\"~s\", [N]) end" | head -c -3)
archive=$(rpc "io:format(\"~s\", [z_path:media_archive($ctx)])" | head -c -3)
mkdir -p "$archive"
echo "uploaded after the backup" > "$archive/smoke-after-backup.txt"
rpc "m_rsc:delete($pid, $ctx)" > /dev/null
# modules not running, as Zotonic's module manager says: a restore must not add any
not_running="lists:sort([ M || {M, S} <- z_module_manager:get_modules_status($ctx), S =/= running ])"
down_before=$(rpc "$not_running")
out=$(cd "$Z" && printf '%s\n\n' "$SITE" | bin/zotonic backup "$SITE" restore "$name" 2>&1)
sleep 5
for i in $(seq 1 60); do [ "$(rpc "z_sites_manager:get_site_status($SITE)")" = "{ok,running}" ] && break; sleep 1; done
sleep 3
# the module manager restarts what the site's restart stopped; give it its start queue
for i in $(seq 1 30); do [ "$(rpc "$not_running")" = "$down_before" ] && break; sleep 1; done
down_after=$(rpc "$not_running")
exists=$(rpc "m_rsc:exists($pid, $ctx)")
tmps=$(ls -A "$(backup_dir)" | grep -E '\.tmp$|\.prev$' || true)
if echo "$out" | grep -q "Done" && [ "$exists" = true ] && [ -f "$archive/smoke-after-backup.txt" ] && [ -z "$tmps" ] \
    && [ "$down_after" = "$down_before" ]; then
    pass restore "set $name: page $pid is back, the later upload kept, no .tmp left, modules not running: $down_after (as before)"
else
    fail restore "set $name: cli '$(echo "$out" | tail -2 | tr '\n' ' ')', page back: $exists, upload kept: $([ -f "$archive/smoke-after-backup.txt" ] && echo yes || echo no), leftovers: $tmps, modules not running before: $down_before, after: $down_after"
fi
rpc "m_config:set_value(mod_backup, encrypt_backups, <<\"false\">>, $ctx)" > /dev/null

echo "=== log: $ERRLOG"
new_errors=$(tail -c +$((errlog_start + 1)) "$ERRLOG" 2>/dev/null | cut -c1-300)
if [ -z "$new_errors" ]; then
    pass log "no line added to the node's error.log"
else
    fail log "$(echo "$new_errors" | wc -l) lines added to the node's error.log:"$'\n'"$(echo "$new_errors" | head -20)"
fi

echo "=== $FAILS failed"
exit $FAILS
