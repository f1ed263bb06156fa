#!/bin/bash
# Differential test: every script in xfs_io_scripts/ runs with xfs_io on a
# file of a real XFS filesystem (loop device, 4 KiB blocks, reflink=1) and
# with iomapsh on a file of an iomapd volume (4 KiB blocks); the outputs are
# normalised (normalize.awk) and must be identical. docs/testing.md,
# "Differential tests against xfs_io", describes the method.
#
# usage: differential_test.sh [--xfs-only] [--keep] [SCRIPT_NAME...]
#   --xfs-only  run only the XFS side (twice) and check it is deterministic
#   --keep      keep the work directory (outputs, images) for inspection
# Environment: IOMAPSH, IOMAPD, IOMAPD_MKFS (binaries), BLOCK_SIZE (both
# sides' block size, default 4096; see docs/testing.md for other sizes).
# Needs root, a free loop device, mkfs.xfs, xfs_io and XFS in the kernel;
# without them it prints "SKIPPED: <why>" and exits 0.
set -u
# mkfs.xfs, xfs_io, losetup live in sbin, which a test's PATH may lack.
export PATH="$PATH:/usr/sbin:/sbin"

# Scripts where iomapd is known to answer differently from XFS today, with
# the reason. Such a script is reported as KNOWN DIFF; if it starts to
# match, the test fails until the entry is removed.
declare -A KNOWN_DIFFS=(
)

XFS_ONLY=0
KEEP=0
ONLY=()
for arg in "$@"; do
  case "$arg" in
    --xfs-only) XFS_ONLY=1 ;;
    --keep) KEEP=1 ;;
    -*) echo "usage: $0 [--xfs-only] [--keep] [SCRIPT_NAME...]" >&2; exit 2 ;;
    *) ONLY+=("${arg%.xfsio}") ;;
  esac
done

if [ -n "${TEST_SRCDIR:-}" ]; then
  ROOT="$TEST_SRCDIR/${TEST_WORKSPACE:-__main__}"
  BIN="$ROOT"
else
  ROOT="$(cd "$(dirname "$0")/.." && pwd)"
  BIN="$ROOT/bazel-bin"
fi
HERE="$ROOT/integration_tests"
SCRIPTS="$HERE/xfs_io_scripts"
NORMALIZE="$HERE/normalize.awk"
IOMAPSH="${IOMAPSH:-$BIN/client/iomapsh}"
IOMAPD="${IOMAPD:-$BIN/server/iomapd}"
IOMAPD_MKFS="${IOMAPD_MKFS:-$BIN/fs/iomapd-mkfs}"
VOLUME=difftest
BLOCK_SIZE=${BLOCK_SIZE:-4096}
FS_BYTES=$((512 << 20))

skip() {
  echo "SKIPPED: $*"
  echo "differential_test was not run: $*" >>"${TEST_WARNINGS_OUTPUT_FILE:-/dev/null}"
  exit 0
}

# ------------------------------------------------------------- environment

check_environment() {
  [ "$(id -u)" -eq 0 ] || skip "not running as root (needs mount and losetup)"
  local tool
  for tool in mkfs.xfs xfs_io losetup mount umount; do
    command -v "$tool" >/dev/null 2>&1 ||
      skip "$tool not found (install Debian's xfsprogs / util-linux)"
  done
  [ -e /dev/loop-control ] || modprobe loop >/dev/null 2>&1
  losetup -f >/dev/null 2>&1 || skip "no free loop device (losetup -f failed)"
  grep -qw xfs /proc/filesystems || modprobe xfs >/dev/null 2>&1
  grep -qw xfs /proc/filesystems || skip "the kernel has no XFS support"
  if [ "$XFS_ONLY" -eq 0 ]; then
    local b
    for b in "$IOMAPSH" "$IOMAPD" "$IOMAPD_MKFS"; do
      [ -x "$b" ] || { echo "FAIL: $b is missing (build it first)"; exit 1; }
    done
  fi
}

WORK=""
LOOP=""
MNT=""
SERVER_PID=""

cleanup() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null
    wait "$SERVER_PID" 2>/dev/null
  fi
  if [ -n "$MNT" ] && mountpoint -q "$MNT"; then
    umount "$MNT" || umount -l "$MNT"
  fi
  [ -n "$LOOP" ] && losetup -d "$LOOP"
  if [ -n "$WORK" ]; then
    if [ "$KEEP" -eq 1 ]; then
      echo "kept $WORK"
    else
      rm -rf "$WORK"
    fi
  fi
}

# A fresh XFS on a loop device, mounted with allocsize=4096 so that buffered
# writes get no speculative post-EOF preallocation (as in fstests runs that
# need stable extent maps; iomapd does not preallocate past EOF).
setup_xfs() {
  truncate -s "$FS_BYTES" "$WORK/xfs.img" || return 1
  mkfs.xfs -q -f -b size=$BLOCK_SIZE -m reflink=1 "$WORK/xfs.img" || return 1
  LOOP=$(losetup -f --show "$WORK/xfs.img") || return 1
  MNT="$WORK/xfs"
  mkdir -p "$MNT" && mount -t xfs -o allocsize=4096 "$LOOP" "$MNT"
}

# A freshly formatted volume and a server for it; sets ADDR.
setup_iomapd() {
  rm -f "$WORK/iomapd.img"
  "$IOMAPD_MKFS" --size=$FS_BYTES --block_size=$BLOCK_SIZE \
    "$WORK/iomapd.img" >"$WORK/mkfs.log" 2>&1 || {
    cat "$WORK/mkfs.log"
    return 1
  }
  "$IOMAPD" --listen=127.0.0.1:0 --volume="$VOLUME=$WORK/iomapd.img" \
    2>"$WORK/iomapd.log" &
  SERVER_PID=$!
  local i
  for i in $(seq 1 200); do
    ADDR=$(sed -n 's/^iomapd: listening on \([^ ]*\).*/\1/p' "$WORK/iomapd.log")
    [ -n "$ADDR" ] && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  echo "iomapd did not start:"
  cat "$WORK/iomapd.log"
  return 1
}

# After a script killed the server: show how it ended and start a new one
# on a new volume, so that the following scripts still run.
restart_iomapd_if_dead() {
  kill -0 "$SERVER_PID" 2>/dev/null && return 0
  wait "$SERVER_PID"
  echo "iomapd exited (status $?) during $1; its log ends with:"
  tail -n 20 "$WORK/iomapd.log"
  cp "$WORK/iomapd.log" "$WORK/out/$1.iomapd.log"
  SERVER_PID=""
  setup_iomapd || { echo "FAIL: could not restart iomapd"; exit 1; }
}

# ------------------------------------------------------------- running

# A script is one or more invocations. The first runs on "file"; a line
# "@ NAME" starts another invocation on NAME (created if missing) and a bare
# "@" one with no file (its commands open what they need). Every other line
# is one command ('#' comment lines and blank lines are skipped). Separate
# invocations keep xfs_io's semantics simple: xfs_io runs each command on
# every file of its open-file table, so a script that opens a second file
# with "open" gets each later command run twice.
#
# for_each_invocation SCRIPT FN: calls FN NAME for each invocation that has
# commands, with the array CMDS holding its -c arguments (NAME is empty for
# a bare "@"). Both programs get /dev/null as stdin: without -c they would
# read commands from it.
for_each_invocation() {
  local script=$1 fn=$2 name=file line
  CMDS=()
  while IFS= read -r line || [ -n "$line" ]; do
    line="${line#"${line%%[![:space:]]*}"}"
    [ -z "$line" ] || [ "${line:0:1}" = "#" ] && continue
    if [ "${line:0:1}" = "@" ]; then
      [ ${#CMDS[@]} -eq 0 ] || "$fn" "$name"
      name="${line#@}"
      name="${name#"${name%%[![:space:]]*}"}"
      CMDS=()
      continue
    fi
    CMDS+=(-c "$line")
  done <"$script"
  [ ${#CMDS[@]} -eq 0 ] || "$fn" "$name"
}

# xfs_io on NAME in $XFS_DIR (so the script's file names are relative to
# it); output appended to $OUT.{stdout,stderr}.
xfs_invocation() {
  local file=()
  [ -n "$1" ] && file=(-f "$1")
  (cd "$XFS_DIR" &&
    timeout 60 xfs_io "${file[@]}" "${CMDS[@]}" </dev/null \
      >>"$OUT.stdout" 2>>"$OUT.stderr")
  [ $? -eq 124 ] && echo "(xfs_io timed out after 60 s)" >>"$OUT.stderr"
}

run_xfs() {
  XFS_DIR=$2
  OUT=$3
  mkdir -p "$XFS_DIR"
  : >"$OUT.stdout"
  : >"$OUT.stderr"
  for_each_invocation "$1" xfs_invocation
}

# Empties the volume's root directory.
clean_volume() {
  local name
  "$IOMAPSH" -s "$ADDR" -V "$VOLUME" -c "ls /" </dev/null 2>/dev/null |
    while IFS= read -r name; do
      [ -n "$name" ] || continue
      "$IOMAPSH" -s "$ADDR" -V "$VOLUME" -c "rm ${name%/}" \
        </dev/null >/dev/null 2>&1 ||
        "$IOMAPSH" -s "$ADDR" -V "$VOLUME" -c "rmdir ${name%/}" \
          </dev/null >/dev/null 2>&1
    done
}

iomapd_invocation() {
  local file=()
  [ -n "$1" ] && file=(-f "$1")
  timeout 60 "$IOMAPSH" -s "$ADDR" -V "$VOLUME" "${file[@]}" "${CMDS[@]}" \
    </dev/null >>"$OUT.stdout" 2>>"$OUT.stderr"
  [ $? -eq 124 ] && echo "(iomapsh timed out after 60 s)" >>"$OUT.stderr"
  kill -0 "$SERVER_PID" 2>/dev/null || echo "(iomapd died)" >>"$OUT.stderr"
}

run_iomapd() {
  OUT=$2
  : >"$OUT.stdout"
  : >"$OUT.stderr"
  clean_volume
  for_each_invocation "$1" iomapd_invocation
}

# $out.norm: normalised stdout, then stderr after a marker line.
normalise() {
  local out=$1
  {
    awk -f "$NORMALIZE" "$out.stdout"
    echo "--- stderr ---"
    awk -f "$NORMALIZE" "$out.stderr"
  } >"$out.norm"
}

PREVIOUS="(start)"
PASSED=()
KNOWN=()
FAILED=()
UNEXPECTED=()

# Runs one script on both sides and records the verdict.
run_one() {
  local script=$1 name
  name=$(basename "$script" .xfsio)
  local o="$WORK/out/$name"
  [ "$XFS_ONLY" -eq 1 ] || restart_iomapd_if_dead "$PREVIOUS"
  PREVIOUS=$name
  run_xfs "$script" "$MNT/run1/$name" "$o.xfs1"
  run_xfs "$script" "$MNT/run2/$name" "$o.xfs2"
  normalise "$o.xfs1"
  normalise "$o.xfs2"
  if ! cmp -s "$o.xfs1.norm" "$o.xfs2.norm"; then
    echo "FAIL $name: XFS output differs between two runs (script is not" \
      "deterministic)"
    diff -u --label "xfs run 1" --label "xfs run 2" "$o.xfs1.norm" "$o.xfs2.norm"
    FAILED+=("$name")
    return
  fi
  if [ "$XFS_ONLY" -eq 1 ]; then
    PASSED+=("$name")
    return
  fi
  run_iomapd "$script" "$o.iomapd"
  normalise "$o.iomapd"
  local known="${KNOWN_DIFFS[$name]:-}"
  if cmp -s "$o.xfs1.norm" "$o.iomapd.norm"; then
    if [ -n "$known" ]; then
      echo "FAIL $name: listed as a known difference ($known) but now" \
        "matches XFS; remove it from KNOWN_DIFFS"
      UNEXPECTED+=("$name")
    else
      PASSED+=("$name")
    fi
    return
  fi
  if [ -n "$known" ]; then
    echo "KNOWN DIFF $name: $known"
    KNOWN+=("$name")
  else
    echo "FAIL $name: iomapsh output differs from xfs_io"
    FAILED+=("$name")
  fi
  diff -u --label "xfs_io ($name)" --label "iomapsh ($name)" \
    "$o.xfs1.norm" "$o.iomapd.norm"
}

select_scripts() {
  local s name want
  SELECTED=()
  for s in "$SCRIPTS"/*.xfsio; do
    name=$(basename "$s" .xfsio)
    if [ ${#ONLY[@]} -eq 0 ]; then
      SELECTED+=("$s")
      continue
    fi
    for want in "${ONLY[@]}"; do
      [ "$name" = "$want" ] && SELECTED+=("$s")
    done
  done
  [ ${#SELECTED[@]} -gt 0 ] || { echo "FAIL: no scripts selected"; exit 1; }
}

check_known_list() {
  local k
  for k in "${!KNOWN_DIFFS[@]}"; do
    [ -f "$SCRIPTS/$k.xfsio" ] || {
      echo "FAIL: KNOWN_DIFFS names $k, which is not a script"
      UNEXPECTED+=("$k")
    }
  done
}

summary() {
  echo
  echo "differential_test: ${#SELECTED[@]} scripts: ${#PASSED[@]} match," \
    "${#KNOWN[@]} known differences, ${#FAILED[@]} failed," \
    "${#UNEXPECTED[@]} stale known-difference entries"
  [ ${#KNOWN[@]} -eq 0 ] || echo "known differences: ${KNOWN[*]}"
  [ ${#FAILED[@]} -eq 0 ] || echo "failed: ${FAILED[*]}"
  [ ${#UNEXPECTED[@]} -eq 0 ] || echo "stale KNOWN_DIFFS: ${UNEXPECTED[*]}"
  [ ${#FAILED[@]} -eq 0 ] && [ ${#UNEXPECTED[@]} -eq 0 ]
}

main() {
  check_environment
  select_scripts
  WORK=$(mktemp -d "${TEST_TMPDIR:-/tmp}/differential.XXXXXX") || exit 1
  trap cleanup EXIT
  trap 'exit 1' INT TERM
  mkdir -p "$WORK/out"
  setup_xfs || { echo "FAIL: could not set up XFS on a loop device"; exit 1; }
  if [ "$XFS_ONLY" -eq 0 ]; then
    setup_iomapd || { echo "FAIL: could not start iomapd"; exit 1; }
    echo "xfs: $LOOP on $MNT; iomapd: $ADDR volume $VOLUME"
    check_known_list
  fi
  local s
  for s in "${SELECTED[@]}"; do run_one "$s"; done
  [ "$XFS_ONLY" -eq 1 ] || restart_iomapd_if_dead "$PREVIOUS"
  summary
}

main
