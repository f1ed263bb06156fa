#!/usr/bin/env bash
# Runs iomapd-bench against iomapd and fio's nbd engine against nbdkit's file
# plugin, side by side on this machine, and prints both figures and the ratio
# iomapd/nbdkit for each workload (default: 4k randread QD32, 4k randwrite
# QD32, 1M sequential read QD32, 1M sequential write QD32).
#
#   bench/iomapd_vs_nbdkit.sh [DIR]  (default: var/bench under the repository,
#                                     or $TMPDIR when that is not writable)
#
# Both servers listen on 127.0.0.1 TCP and serve a file of SIZE bytes on the
# same filesystem (DIR): nbdkit exports DIR/nbdkit.img (prefilled with data);
# iomapd serves DIR/iomapd.img, a volume holding /bench.0, which iomapd-bench
# lays out (writes fully and fsyncs) before the first run. Both are buffered:
# nbdkit's file plugin goes through the host page cache, iomapd through its
# own page cache (--cache_mb, sized so the file fits, as it does in the host
# page cache, with the host kernel's dirty thresholds). Both clients use the
# same rw, bs, iodepth, numjobs and runtime.
#
# Environment:
#   RUNTIME   seconds per run (default 10)
#   SIZE      file size (default 1g)
#   REPEAT    runs per side and workload (default 3); the sides alternate and
#             the median of each is reported, because a virtual machine's
#             speed drifts from one run to the next
#   IODEPTH   queue depth per job (default 32)
#   NUMJOBS   jobs (connections) per side (default 1)
#   WORKLOADS space-separated rw:bs pairs
#             (default "randread:4k randwrite:4k read:1m write:1m")
#   CACHE_MB  iomapd's --cache_mb (default: SIZE in MiB + 512)
#   DIRTY_BACKGROUND_MB, DIRTY_MB  iomapd's --dirty_background_mb and
#             --dirty_mb (default: the host kernel's thresholds for nbdkit's
#             file, from /proc/sys/vm, capped at CACHE_MB)
#   ONLY      "nbdkit" or "iomapd" to run one side alone (its columns only)
#   IOMAPD_ENV  VAR=VALUE words set in iomapd's environment, e.g.
#             GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1073741824
#             (see docs/bench.md: iomapd-bench applies the same to itself)
#   HOLD      1 (default): keep the iomapd file open between runs (see
#             start_holder); 0: every run opens it, with a cold cache
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
runtime=${RUNTIME:-10}
repeat=${REPEAT:-3}
size=${SIZE:-1g}
iodepth=${IODEPTH:-32}
numjobs=${NUMJOBS:-1}
workloads=${WORKLOADS:-"randread:4k randwrite:4k read:1m write:1m"}
only=${ONLY:-}
iomapd_env=${IOMAPD_ENV:-}
hold=${HOLD:-1}
want() { [ -z "$only" ] || [ "$only" = "$1" ]; }
dir=${1:-$top/var/bench}
if ! mkdir -p "$dir" 2>/dev/null || [ ! -w "$dir" ]; then
  dir=${TMPDIR:-/tmp}/iomapd-bench
  mkdir -p "$dir"
fi
bytes=$(numfmt --from=iec "${size^^}")
cache_mb=${CACHE_MB:-$((bytes / 1048576 + 512))}

# The dirty-data thresholds the host kernel applies to nbdkit's file
# (vm.dirty_background_bytes/ratio, vm.dirty_bytes/ratio of available
# memory), in MiB, capped at iomapd's cache: iomapd gets the same ones, so
# that neither side starts writeback or throttles writers earlier.
host_dirty_mb() {
  local bytes_knob=$1 ratio_knob=$2 mb avail_mb
  mb=$(($(cat "/proc/sys/vm/$bytes_knob") >> 20))
  if [ "$mb" -eq 0 ]; then
    avail_mb=$(awk '/^MemAvailable:/ { print int($2 / 1024) }' /proc/meminfo)
    mb=$((avail_mb * $(cat "/proc/sys/vm/$ratio_knob") / 100))
  fi
  echo $((mb < cache_mb ? mb : cache_mb))
}
dirty_background_mb=${DIRTY_BACKGROUND_MB:-$(host_dirty_mb dirty_background_bytes dirty_background_ratio)}
dirty_mb=${DIRTY_MB:-$(host_dirty_mb dirty_bytes dirty_ratio)}

for tool in fio nbdkit python3; do
  command -v "$tool" >/dev/null ||
    { echo "$tool is not installed (tools/dev up installs it)" >&2; exit 1; }
done

pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# nbdkit's file plugin on a prefilled file of SIZE bytes. Sets nbd_port.
start_nbdkit() {
  local img=$dir/nbdkit.img i
  if [ ! -f "$img" ] || [ "$(stat -c %s "$img")" != "$bytes" ] ||
    [ -f "$img.partial" ]; then
    echo "prefilling $img ($size)" >&2
    touch "$img.partial"
    fio --name=prefill --filename="$img" --size="$size" --rw=write --bs=1m \
      --ioengine=psync --refill_buffers=1 --end_fsync=1 --output=/dev/null
    rm -f "$img.partial"
  fi
  nbd_port=$(free_port)
  # nbdkit writes the pid file once it listens.
  rm -f "$dir/nbdkit.pid"
  nbdkit -f -i 127.0.0.1 -p "$nbd_port" -P "$dir/nbdkit.pid" file file="$img" &
  pids+=($!)
  for ((i = 0; i < 100; i++)); do
    [ -s "$dir/nbdkit.pid" ] && break
    sleep 0.1
  done
  [ -s "$dir/nbdkit.pid" ] || { echo "nbdkit did not start" >&2; exit 1; }
  echo "nbdkit on 127.0.0.1:$nbd_port" >&2
}

# Builds iomapd-bench, iomapd and iomapd-mkfs and copies them to DIR (the
# bazel-bin symlink moves whenever someone builds another configuration).
build_iomapd() {
  local bin
  (cd "$top" && bazel build //bench:iomapd-bench //server:iomapd \
    //fs:iomapd-mkfs >/dev/null 2>&1) ||
    { echo "bazel build of iomapd-bench, iomapd, iomapd-mkfs failed" >&2; exit 1; }
  for bin in bench/iomapd-bench server/iomapd fs/iomapd-mkfs; do
    cp -f "$top/bazel-out/k8-opt/bin/$bin" "$dir/"
  done
}

# iomapd on a fresh volume of twice the file's size (+256 MiB); waits for its
# "iomapd: listening on HOST:PORT" line. Sets target.
start_iomapd() {
  local img=$dir/iomapd.img i
  rm -f "$img"
  "$dir/iomapd-mkfs" --size=$((bytes * 2 + (256 << 20))) "$img" >/dev/null
  env $iomapd_env "$dir/iomapd" --listen=127.0.0.1:0 --volume=bench="$img" \
    --cache_mb="$cache_mb" --dirty_background_mb="$dirty_background_mb" \
    --dirty_mb="$dirty_mb" 2>"$dir/iomapd.log" &
  pids+=($!)
  target=
  for ((i = 0; i < 100; i++)); do
    target=$(sed -nE 's/.*iomapd: listening on ([0-9.]+:[0-9]+).*/\1/p' \
      "$dir/iomapd.log" | head -1)
    [ -n "$target" ] && break
    sleep 0.1
  done
  [ -n "$target" ] ||
    { echo "iomapd did not start:" >&2; cat "$dir/iomapd.log" >&2; exit 1; }
  echo "iomapd on $target (cache ${cache_mb} MiB, dirty background" \
    "${dirty_background_mb} MiB, dirty ${dirty_mb} MiB; log $dir/iomapd.log)" >&2
}

# Lays the file out, reads it once and keeps it open in the background
# (iomapd-bench --hold_open), so that the server keeps it cached between
# runs as nbdkit keeps its file open: fs/ drops a file's cached pages at its
# last close.
start_holder() {
  local i
  "${bench_cmd[@]}" --hold_open 2>"$dir/holder.log" &
  pids+=($!)
  for ((i = 0; i < 600; i++)); do
    grep -q 'holding' "$dir/holder.log" && break
    kill -0 "${pids[-1]}" 2>/dev/null ||
      { echo "iomapd-bench --hold_open failed:" >&2; cat "$dir/holder.log" >&2; exit 1; }
    sleep 0.5
  done
  cat "$dir/holder.log" >&2
}

# Prints "<iops> <bw_bytes> <p50_us> <p99_us> <p99.9_us>" of a fio run.
run_fio() {
  local rw=$1 bs=$2
  fio --name=job --ioengine=nbd --uri="nbd://127.0.0.1:$nbd_port" \
    --size="$size" --rw="$rw" --bs="$bs" --iodepth="$iodepth" \
    --numjobs="$numjobs" --group_reporting=1 --runtime="$runtime" \
    --time_based=1 --lat_percentiles=1 --output-format=json 2>/dev/null |
    python3 -c '
import json, sys
text = sys.stdin.read()
j = json.loads(text[text.index("{"):])["jobs"][0]
side = j["read"] if j["read"]["io_bytes"] > 0 else j["write"]
p = side["lat_ns"]["percentile"]
print("%.0f %.0f %.1f %.1f %.1f" % (side["iops"], side["bw_bytes"],
      p["50.000000"] / 1e3, p["99.000000"] / 1e3, p["99.900000"] / 1e3))'
}

# Prints "<iops> <bw_bytes> <p50_us> <p99_us> <p99.9_us>" of an iomapd-bench
# run.
run_ours() {
  local rw=$1 bs=$2 line
  line=$("${bench_cmd[@]}" --rw="$rw" --bs="$bs" --runtime="$runtime" |
    grep '^iomapd-bench ')
  echo "$line" >&2
  echo "$line" | sed -E 's/.* iops=([0-9.]+) bw_bytes=([0-9.]+) .* p50_us=([0-9.]+) p99_us=([0-9.]+) p999_us=([0-9.]+) .*/\1 \2 \3 \4 \5/'
}

if want nbdkit; then start_nbdkit; fi
if want iomapd; then
  build_iomapd
  start_iomapd
  bench_cmd=("$dir/iomapd-bench" --server="$target" --volume=bench
    --file=/bench.0 --size="$size" --iodepth="$iodepth" --numjobs="$numjobs")
  if [ "$hold" = 1 ]; then
    start_holder
  else
    # Lay the file out once, outside the measured runs.
    "${bench_cmd[@]}" --rw=read --bs=1m --runtime=1 >/dev/null
  fi
fi

# Median of the numbers on stdin.
median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# Column $1 (1-based) of each line on stdin, then their median.
col_median() { awk -v c="$1" '{ print $c }' | median; }

printf '%-18s %9s %9s %6s %9s %9s %26s %26s\n' workload nbd_iops our_iops \
  ratio nbd_MB/s our_MB/s "nbd_lat_us p50/99/99.9" "our_lat_us p50/99/99.9"
for spec in $workloads; do
  rw=${spec%%:*} bs=${spec##*:}
  fio_runs=() our_runs=()
  for ((i = 0; i < repeat; i++)); do
    fio_run="0 0 0 0 0" our_run="0 0 0 0 0"
    if want nbdkit; then fio_run=$(run_fio "$rw" "$bs"); fi
    if want iomapd; then our_run=$(run_ours "$rw" "$bs"); fi
    fio_runs+=("$fio_run") our_runs+=("$our_run")
  done
  echo "$rw $bs: nbdkit [${fio_runs[*]}] / iomapd [${our_runs[*]}]" >&2
  f=() o=()
  for c in 1 2 3 4 5; do
    f+=("$(printf '%s\n' "${fio_runs[@]}" | col_median "$c")")
    o+=("$(printf '%s\n' "${our_runs[@]}" | col_median "$c")")
  done
  awk -v w="$rw $bs QD$iodepth" -v fi="${f[0]}" -v oi="${o[0]}" \
    -v fb="${f[1]}" -v ob="${o[1]}" \
    -v fl="${f[2]}/${f[3]}/${f[4]}" -v ol="${o[2]}/${o[3]}/${o[4]}" 'BEGIN {
    printf "%-18s %9.0f %9.0f %6.2f %9.1f %9.1f %26s %26s\n", w, fi, oi,
      (fi > 0 ? oi / fi : 0), fb / 1e6, ob / 1e6, fl, ol }'
done
