#!/bin/sh
# The one test command: sets up the machine, then runs every check and test. Exit status is
# non-zero when any step fails; the last line sums up the tests of all runners.
set -u
cd "$(dirname "$0")/.."
[ -x "$HOME/.cargo/bin/cargo" ] && PATH="$HOME/.cargo/bin:$PATH"
export PATH
export REBAR_COLOR=none
# The NIF and zbackup the Erlang tests load are built in cargo's dev profile (dependencies
# optimised), sharing what `cargo test` compiled; a site's build (rebar3 compile, the demo) is
# release. native/build_nif.sh says more.
export BACKUP_NIF_PROFILE=dev

setup_started=$(date +%s)
sh tools/setup.sh || { echo "tests: 0 passed, 1 failed"; exit 1; }
echo "==> setup took $(($(date +%s) - setup_started)) s"
eval "$(sh tools/pg_env.sh)" || { echo "tests: 0 passed, 1 failed"; exit 1; }
trap 'sh tools/pg_env.sh stop' EXIT

logdir=$(mktemp -d /tmp/zb-test.XXXXXX)
failed_steps=""

step() {
    name=$1; shift
    echo "==> $name: $*"
    started=$(date +%s)
    if "$@" >"$logdir/$name.log" 2>&1; then
        tail -n 3 "$logdir/$name.log"
    else
        cat "$logdir/$name.log"
        echo "==> $name FAILED"
        failed_steps="$failed_steps $name"
    fi
    # where CI's minutes go, step by step
    echo "==> $name took $(($(date +%s) - started)) s"
}

step fmt cargo fmt --all -- --check
step clippy cargo clippy --locked --workspace --all-targets -- -D warnings
step cargo_test cargo test --locked --workspace -- --include-ignored
step compile rebar3 as test compile
step xref rebar3 as test xref
step eunit rebar3 eunit
# The correctness suites; the speed checks (backup_perf_SUITE) run apart and never decide on a
# figure, only on whether the work itself ran.
suites=$(ls test/*_SUITE.erl | grep -v '/backup_perf_SUITE.erl$' | paste -sd, -)
step ct rebar3 ct --suite "$suites"
step perf rebar3 ct --suite test/backup_perf_SUITE

# Sum what the runners said: cargo ("test result: ok. N passed; M failed"), EUnit ("All N tests
# passed." / "Failed: F.  Skipped: S.  Passed: P."), Common Test ("Failed F tests. Passed P tests."
# / "All P tests passed.").
# A skipped or ignored test proves nothing, so it counts as failed.
passed=0; failed=0; skipped=0
eval "$(awk '
  /^test result:/ { p += $4; f += $6; s += $8 }
  END { printf "cp=%d cf=%d cs=%d\n", p, f, s }' "$logdir/cargo_test.log" 2>/dev/null)"
passed=$((passed + cp)); failed=$((failed + cf)); skipped=$((skipped + cs))
for runner in eunit ct; do
    eval "$(awk '
      /All [0-9]+ tests passed/ { for (i = 1; i <= NF; i++) if ($i == "All") p += $(i+1) }
      /Failed: [0-9]+\. +Skipped: [0-9]+\. +Passed: [0-9]+\./ { gsub(/\./, ""); for (i = 1; i <= NF; i++) { if ($i == "Failed:") f += $(i+1); if ($i == "Passed:") p += $(i+1) } }
      /Failed [0-9]+ tests?\. Passed [0-9]+ tests?\./ { f += $2; p += $5 }
      /^[0-9]+ tests, [0-9]+ failures?/ { p += $1 - $3; f += $3 }
      /Skipped:? [0-9]+/ { for (i = 1; i <= NF; i++) if ($i ~ /^Skipped:?$/) { v = $(i+1); gsub(/[^0-9]/, "", v); s += v } }
      END { printf "rp=%d rf=%d rs=%d\n", p, f, s }' "$logdir/$runner.log" 2>/dev/null)"
    passed=$((passed + rp)); failed=$((failed + rf)); skipped=$((skipped + rs))
done
# The speed checks: their figures and verdicts, reported apart from the tests.
if [ -f "$logdir/perf.log" ]; then
    echo "==> perf (figures of the dev-profile build above; a missed target is reported, not failed):"
    grep '^perf:' "$logdir/perf.log" | sort -u
    echo "perf: $(grep -c '^perf:.*: met$' "$logdir/perf.log") targets met, $(grep -c '^perf:.*: MISSED$' "$logdir/perf.log") missed"
fi
if [ "$skipped" -gt 0 ]; then
    echo "skipped or ignored tests: $skipped (counted as failed)"
    failed=$((failed + skipped))
fi
rm -rf "$logdir"

if [ -n "$failed_steps" ]; then
    echo "failed steps:$failed_steps"
    [ "$failed" -gt 0 ] || failed=1
    echo "tests: $passed passed, $failed failed"
    exit 1
fi
echo "tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ] || exit 1
