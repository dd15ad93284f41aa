#!/bin/sh
# Finds a PostgreSQL server for the tests and the demo, and prints the environment to use it:
#   eval "$(sh tools/pg_env.sh)"
# Order: 1. PGHOST/PGPORT/PGUSER/PGPASSWORD already set -> used as they are.
#        2. the server on 127.0.0.1:5432 (Debian's cluster, started here when installed but
#           stopped) -> a login role `zotonic_test` (CREATEDB) is made once through the
#           postgres OS user, so nothing else of that server changes.
#        3. otherwise a throwaway cluster: initdb + pg_ctl as the postgres OS user in a temp
#           dir, unix socket only; `sh tools/pg_env.sh stop` (or the EXIT trap of the caller,
#           via ZB_PG_TMPDIR) stops it and removes it.
set -eu

role=zotonic_test
pass=zotonic_test

pg_bin() {
    ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

if [ "${1:-}" = stop ]; then
    if [ -n "${ZB_PG_TMPDIR:-}" ] && [ -d "$ZB_PG_TMPDIR" ]; then
        runuser -u postgres -- "$(pg_bin)/pg_ctl" -D "$ZB_PG_TMPDIR/data" -m fast stop >/dev/null 2>&1 || true
        rm -rf "$ZB_PG_TMPDIR"
    fi
    exit 0
fi

if [ -n "${PGHOST:-}" ] && [ -n "${PGUSER:-}" ]; then
    echo "export PGHOST='$PGHOST' PGPORT='${PGPORT:-5432}' PGUSER='$PGUSER' PGPASSWORD='${PGPASSWORD:-}'"
    exit 0
fi

answers() { pg_isready -q -h 127.0.0.1 -p 5432 -t 3 >/dev/null 2>&1; }

if ! answers && command -v pg_ctlcluster >/dev/null 2>&1; then
    for c in $(pg_lsclusters -h 2>/dev/null | awk '$3 == 5432 { print $1 "/" $2 }'); do
        pg_ctlcluster "${c%/*}" "${c#*/}" start >/dev/null 2>&1 || true
    done
    i=0; while ! answers && [ $i -lt 20 ]; do sleep 0.5; i=$((i+1)); done
fi

if answers; then
    if ! PGPASSWORD=$pass psql -h 127.0.0.1 -U $role -d postgres -tAc 'select 1' >/dev/null 2>&1; then
        runuser -u postgres -- psql -q -d postgres -c \
            "DO \$\$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$role') THEN CREATE ROLE $role LOGIN CREATEDB PASSWORD '$pass'; ELSE ALTER ROLE $role LOGIN CREATEDB PASSWORD '$pass'; END IF; END \$\$;" >&2
    fi
    echo "export PGHOST=127.0.0.1 PGPORT=5432 PGUSER=$role PGPASSWORD=$pass"
    exit 0
fi

# 3. A throwaway cluster of our own.
bin=$(pg_bin)
[ -n "$bin" ] || { echo "pg_env.sh: no PostgreSQL server binaries; apt-get install postgresql" >&2; exit 1; }
tmp=$(mktemp -d /tmp/zb-pg.XXXXXX)
chown postgres "$tmp"
runuser -u postgres -- "$bin/initdb" -A trust -U postgres -D "$tmp/data" >/dev/null
runuser -u postgres -- "$bin/pg_ctl" -D "$tmp/data" -w -l "$tmp/log" \
    -o "-k $tmp -c listen_addresses='' -p 54329" start >/dev/null
echo "export PGHOST='$tmp' PGPORT=54329 PGUSER=postgres PGPASSWORD='' ZB_PG_TMPDIR='$tmp'"
