#!/usr/bin/env bash
# Runs fio and block_bench side by side on the same 1 GiB file and prints both
# figures and the ratio ours/fio for four workloads:
#   4k randread QD32, 4k randwrite QD32, 1M seq read QD32, 1M seq write QD32
#
#   bench/block_vs_fio.sh [DIR]     (default: var/bench under the repository,
#                                    or $TMPDIR when that is not writable)
# Environment: RUNTIME (seconds per run, default 10), SIZE (default 1g),
# REPEAT (default 3): fio and block_bench run alternately REPEAT times per
# workload and the median of each is reported, because a virtual disk's speed
# drifts from one run to the next.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
runtime=${RUNTIME:-10}
repeat=${REPEAT:-3}
size=${SIZE:-1g}
dir=${1:-$top/var/bench}
if ! mkdir -p "$dir" 2>/dev/null || [ ! -w "$dir" ]; then
  dir=${TMPDIR:-/tmp}/iomapd-bench
  mkdir -p "$dir"
fi
file=$dir/block_bench.img

command -v fio >/dev/null || { echo "fio is not installed" >&2; exit 1; }
# Build, then copy the binary: the bazel-bin symlink moves whenever someone
# builds with another configuration.
(cd "$top" && bazel build //bench:block_bench >/dev/null 2>&1) ||
  { echo "bazel build //bench:block_bench failed" >&2; exit 1; }
bench=$dir/block_bench
cp -f "$top/bazel-out/k8-opt/bin/bench/block_bench" "$bench"

# Prefill the whole file with data so reads hit allocated, written blocks.
bytes=$(numfmt --from=iec "${size^^}")
if [ ! -f "$file" ] || [ "$(stat -c %s "$file")" != "$bytes" ] || [ -f "$file.partial" ]; then
  echo "prefilling $file ($size)" >&2
  touch "$file.partial"
  fio --name=prefill --filename="$file" --size="$size" --rw=write --bs=1m \
    --ioengine=io_uring --direct=1 --iodepth=16 --refill_buffers=1 \
    --output=/dev/null
  rm -f "$file.partial"
fi

# Prints "<iops> <bw_bytes>" of a fio run.
run_fio() {
  local rw=$1 bs=$2
  fio --name=job --filename="$file" --size="$size" --rw="$rw" --bs="$bs" \
    --ioengine=io_uring --direct=1 --iodepth=32 --runtime="$runtime" \
    --time_based=1 --output-format=json |
    python3 -c '
import json, sys
j = json.load(sys.stdin)["jobs"][0]
side = j["read"] if j["read"]["io_bytes"] > 0 else j["write"]
print("%.0f %.0f" % (side["iops"], side["bw_bytes"]))'
}

# Prints "<iops> <bw_bytes>" of a block_bench run.
run_ours() {
  local rw=$1 bs=$2 line
  line=$("$bench" --device="$file" --rw="$rw" --bs="$bs" --iodepth=32 \
    --runtime_s="$runtime" --size="$size")
  echo "$line" >&2
  echo "$line" | sed -E 's/.* iops=([0-9.]+) bw_bytes=([0-9.]+).*/\1 \2/'
}

# Median of the numbers on stdin.
median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

printf '%-22s %12s %12s %10s %10s %7s\n' workload fio_iops our_iops fio_MiB/s our_MiB/s ratio
for spec in "randread 4k" "randwrite 4k" "read 1m" "write 1m"; do
  set -- $spec
  fio_runs=() our_runs=()
  for ((i = 0; i < repeat; i++)); do
    read -r iops _ < <(run_fio "$1" "$2")
    fio_runs+=("$iops")
    read -r iops _ < <(run_ours "$1" "$2")
    our_runs+=("$iops")
  done
  echo "$1 $2: fio ${fio_runs[*]} / ours ${our_runs[*]}" >&2
  fio_iops=$(printf '%s\n' "${fio_runs[@]}" | median)
  our_iops=$(printf '%s\n' "${our_runs[@]}" | median)
  bs_bytes=$(numfmt --from=iec "${2^^}")
  awk -v w="$1 $2 QD32" -v f="$fio_iops" -v o="$our_iops" -v bs="$bs_bytes" 'BEGIN {
    printf "%-22s %12.0f %12.0f %10.1f %10.1f %7.2f\n", w, f, o,
      f * bs / 1048576, o * bs / 1048576, (f > 0 ? o / f : 0) }'
done
