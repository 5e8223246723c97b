#!/usr/bin/env bash
# secbox-recover on versions trees made here: the start counting of a version
# on trial, the rollbacks (a second start, a start or a check past the
# deadline, a failed unit), the known-good secbox.env bundle, and state
# files it must not believe.
#   tests/update/recover_test.sh SOURCE_DIR
set -uo pipefail
recover="$1/update/scripts/secbox-recover"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
check() { # description command...
  local what=$1
  shift
  if "$@"; then echo "ok - $what"; else echo "FAIL - $what"; failures=$((failures + 1)); fi
}
now=$(date +%s)
# A tree: versions 1.0 and 2.0 staged, current -> $1, known-good -> $2.
tree() { # name current known-good
  local d="$work/$1"
  mkdir -p "$d/lib/versions/1.0" "$d/lib/versions/2.0" "$d/state" "$d/etc"
  printf '#!/bin/sh\n' >"$d/lib/versions/1.0/secbox"
  printf '#!/bin/sh\n' >"$d/lib/versions/2.0/secbox"
  ln -sfn "versions/$2" "$d/lib/current"
  ln -sfn "versions/$3" "$d/lib/known-good"
  printf '%s' "$d"
}
trial() { # dir [deadline] [starts] [phase]
  printf 'ATTEMPT=att-1\nFROM=1.0\nTO=2.0\nPHASE=%s\nSWITCHED_AT=%s\nDEADLINE=%s\nTRIAL_S=120\nSTARTS=%s\n' \
    "${4:-trial}" "$now" "${2:-$((now + 300))}" "${3:-0}" >"$1/lib/update.state"
}
run() { # dir action
  "$recover" --versions "$1/lib" --state "$1/state" --etc "$1/etc" --no-restart "$2" 2>"$1/err"
}
current() { readlink "$1/lib/current"; }
outcome() { sed -n "s/^$2=//p" "$1/lib/results/att-1" 2>/dev/null; }

# 1. The first start of a version on trial is counted; the second rolls back.
d=$(tree starts 2.0 1.0)
trial "$d"
run "$d" pre-start
check "the first start is counted" grep -qx 'STARTS=1' "$d/lib/update.state"
check "and the new version starts" test "$(current "$d")" = versions/2.0
run "$d" pre-start
check "a second start rolls back to known-good" test "$(current "$d")" = versions/1.0
check "its outcome is recorded as a rollback" test "$(outcome "$d" PHASE)" = rollback
check "the outcome says why" bash -c "grep -q 'stopped during its trial (start 2)' '$d/lib/results/att-1'"
check "the state is gone" test ! -e "$d/lib/update.state"
run "$d" pre-start
check "a start after it changes nothing" test "$(current "$d")" = versions/1.0

# 2. A start past the deadline rolls back.
d=$(tree late 2.0 1.0)
trial "$d" $((now - 1)) 0
run "$d" pre-start
check "a first start past the deadline rolls back" test "$(current "$d")" = versions/1.0

# 3. The timer's check: nothing before the deadline; a rollback after, exit 3.
d=$(tree check 2.0 1.0)
trial "$d" $((now + 300)) 1
run "$d" check
check "check before the deadline changes nothing" test "$(current "$d")" = versions/2.0
trial "$d" $((now - 1)) 1
run "$d" check
rc=$?
check "check past the deadline rolls back" test "$(current "$d")" = versions/1.0
check "and asks for a restart (exit 3 with --no-restart)" test "$rc" -eq 3
check "the outcome names the missing welcome" bash -c "grep -q 'no welcome' '$d/lib/results/att-1'"

# 4. Nothing to do: no state; an attempt before its switch; a committed trial.
d=$(tree quiet 2.0 2.0)
run "$d" pre-start
check "no state: nothing changes" test "$(current "$d")" = versions/2.0
trial "$d" $((now - 1)) 5 download
run "$d" pre-start
check "an attempt before its switch is the daemon's to report" \
  bash -c "[[ \$(readlink '$d/lib/current') == versions/2.0 && -e '$d/lib/update.state' && ! -e '$d/lib/results' ]]"
trial "$d" $((now - 1)) 5
run "$d" pre-start
check "a trial already committed (known-good is the new version) is left alone" \
  bash -c "[[ \$(readlink '$d/lib/current') == versions/2.0 && ! -e '$d/lib/results' ]]"

# 5. A state it must not believe.
d=$(tree hostile 2.0 1.0)
printf 'ATTEMPT=att-1\nFROM=1.0\nTO=../../../etc\nPHASE=trial\nDEADLINE=0\nSTARTS=9\n' >"$d/lib/update.state"
run "$d" pre-start
check "a version name with slashes is not acted on" test "$(current "$d")" = versions/2.0
# shellcheck disable=SC2016 # the text is the attack, not for this shell
printf 'ATTEMPT=$(touch %s/pwned)\nFROM=1.0\nTO=2.0\nPHASE=trial\nDEADLINE=0\nSTARTS=9\n' "$work" >"$d/lib/update.state"
run "$d" pre-start
check "an attempt id with shell in it is not acted on" \
  bash -c "[[ \$(readlink '$d/lib/current') == versions/2.0 && ! -e '$work/pwned' ]]"
rm -f "$d/lib/update.state"
mkdir -p "$work/elsewhere/lib"
trial "$work/elsewhere" $((now - 1)) 5
ln -s "$work/elsewhere/lib/update.state" "$d/lib/update.state"
run "$d" pre-start
check "a state file that is a symlink is ignored" test "$(current "$d")" = versions/2.0

# 6. A known-good version that is gone: the rollback fails, and says so.
d=$(tree gone 2.0 1.0)
rm -rf "$d/lib/versions/1.0"
trial "$d" $((now + 300)) 1
run "$d" pre-start
check "a rollback to a missing version is recorded as rollback-failed" test "$(outcome "$d" PHASE)" = rollback-failed
check "and current stays what it was" test "$(current "$d")" = versions/2.0

# 7. The unit failed for good: known-good version and secbox.env bundle back.
d=$(tree failed 2.0 1.0)
printf 'DEVICE_ID=dev_1\nCLOUD_BASE_URL=https://cloud.example\n' >"$d/etc/secbox.env"
mkdir -p "$d/state/known-good"
printf 'DEVICE_ID=dev_1\nCLOUD_BASE_URL=https://cloud.example\nFRIGATE_URL=http://127.0.0.1:5000\n' \
  >"$d/state/known-good/secbox.env"
run "$d" failed
rc=$?
check "failed: the known-good version is current again" test "$(current "$d")" = versions/1.0
check "failed: secbox.env is the known-good bundle" cmp -s "$d/state/known-good/secbox.env" "$d/etc/secbox.env"
check "failed: the replaced one is kept" test -f "$d/state/known-good/secbox.env.replaced"
check "failed: secbox.env stays 0600" test "$(stat -c %a "$d/etc/secbox.env")" = 600
check "failed: an outcome for the cloud" bash -c "grep -lq 'PHASE=rollback' '$d'/lib/results/recover-*"
check "failed: asks for a restart" test "$rc" -eq 3
run "$d" failed
rc=$?
check "failed again with nothing older: no restart loop" test "$rc" -eq 0

# 8. A hostile daemon (as root only): the tree belongs to an unprivileged
# user, who planted links where root would write. Root's files stay root's
# and untouched; the recovery itself still works.
if [[ $(id -u) -eq 0 ]]; then
  chmod 0755 "$work"
  # The script runs its work as the tree's owner (nobody), who must be able
  # to read it: the source tree may sit in a folder only root can enter.
  install -m 0755 "$recover" "$work/secbox-recover"
  recover="$work/secbox-recover"
  owner=nobody
  d=$(tree hostile 2.0 1.0)
  mkdir -p "$work/rootonly"
  printf "root's\n" >"$work/victim"
  chmod 0644 "$work/victim"
  ln -s "$work/rootonly" "$d/lib/results"
  printf 'DEVICE_ID=dev_1\nCLOUD_BASE_URL=https://cloud.example\n' >"$d/etc/secbox.env"
  mkdir -p "$d/state/known-good"
  printf 'DEVICE_ID=dev_1\nCLOUD_BASE_URL=https://cloud.example\nX=1\n' >"$d/state/known-good/secbox.env"
  ln -s "$work/victim" "$d/state/known-good/secbox.env.replaced"
  chown -R "$owner:nogroup" "$d"
  chown -h root:root "$d/lib/results" "$d/state/known-good/secbox.env.replaced"
  trial "$d" $((now + 300)) 1
  chown "$owner:nogroup" "$d/lib/update.state"
  run "$d" failed
  check "hostile: the rollback still happens" test "$(current "$d")" = versions/1.0
  check "hostile: a results link to a root folder gets no outcome" test -z "$(ls -A "$work/rootonly")"
  check "hostile: the root folder stays root's" test "$(stat -c %U "$work/rootonly")" = root
  check "hostile: a root file behind secbox.env.replaced is unchanged" test "$(cat "$work/victim")" = "root's"
  check "hostile: and stays root's" test "$(stat -c %U "$work/victim")" = root
  check "hostile: secbox.env is still restored" cmp -s "$d/state/known-good/secbox.env" "$d/etc/secbox.env"
  check "hostile: what was written belongs to the tree's owner" test "$(stat -c %U "$d/etc/secbox.env")" = "$owner"
  # The state file is the daemon's: a link there is not followed to a root file.
  d=$(tree hostile-state 2.0 1.0)
  printf 'PHASE=trial\nATTEMPT=att-1\nFROM=1.0\nTO=2.0\nDEADLINE=%s\nSTARTS=0\n' $((now + 300)) >"$work/victim-state"
  chown -R "$owner:nogroup" "$d"
  ln -s "$work/victim-state" "$d/lib/update.state"
  run "$d" pre-start
  check "hostile: a state link to a root file is not rewritten" grep -qx 'STARTS=0' "$work/victim-state"
else
  echo "ok - hostile-daemon checks skipped (not root) # SKIP"
fi

# The lock a commit takes (update.lock): while the daemon holds it, the
# check waits instead of deciding; once it is released, the check goes on.
# Here the trial is past its deadline and the daemon commits (moves
# known-good) before it lets go: the check then finds the trial passed and
# leaves it.
d=$(tree locked 2.0 1.0)
trial "$d" $((now - 1)) 1
exec 8>>"$d/lib/update.lock"
flock 8
run "$d" check &
checker=$!
sleep 1
check "while the daemon holds the lock, the check has not acted" \
  bash -c "[[ \$(readlink '$d/lib/current') == versions/2.0 ]] && kill -0 $checker"
ln -sfn versions/2.0 "$d/lib/known-good"  # the commit, under the lock
exec 8>&-
wait "$checker"
check "after the commit, the check leaves the committed version" test "$(current "$d")" = versions/2.0
check "and records no rollback" test ! -e "$d/lib/results/att-1"
# A lock held by a daemon that hangs does not stop the recovery for long.
d=$(tree hung 2.0 1.0)
trial "$d" $((now - 1)) 1
exec 8>>"$d/lib/update.lock"
flock 8
run "$d" check
check "a lock held past 10 s: the check rolls back all the same" test "$(current "$d")" = versions/1.0
check "and says why" grep -q "stayed locked for 10 s" "$d/err"
exec 8>&-

echo "# $failures failed"
[[ $failures -eq 0 ]]
