#!/bin/bash
# normalize.awk masks exactly what differs between xfs_io on XFS and
# iomapsh on iomapd (program name, timings, physical addresses, AG columns)
# and nothing that carries meaning (logical ranges, lengths, flags, holes,
# delalloc ranges, op counts).
set -u
if [ -n "${TEST_SRCDIR:-}" ]; then
  NORMALIZE="$TEST_SRCDIR/${TEST_WORKSPACE:-__main__}/integration_tests/normalize.awk"
else
  NORMALIZE="$(cd "$(dirname "$0")" && pwd)/normalize.awk"
fi
FAILS=0

# check NAME INPUT EXPECTED: normalising INPUT gives EXPECTED.
check() {
  local got
  got=$(printf '%s' "$2" | awk -f "$NORMALIZE")
  if [ "$got" != "$3" ]; then
    echo "FAIL $1"
    diff -u <(printf '%s\n' "$3") <(printf '%s\n' "$got")
    FAILS=$((FAILS + 1))
  fi
}

# differ NAME A B: A and B must still differ after normalising.
differ() {
  if [ "$(printf '%s' "$2" | awk -f "$NORMALIZE")" = \
       "$(printf '%s' "$3" | awk -f "$NORMALIZE")" ]; then
    echo "FAIL $1: the normaliser hides a real difference"
    FAILS=$((FAILS + 1))
  fi
}

T=$'\t'
check "fiemap plain" \
  "file:
${T}0: [0..127]: 3520..3647
${T}1: [128..2047]: hole
${T}2: [2048..2063]: 0..15 16 blocks" \
  "file:
${T}0: [0..127]: PHYS
${T}1: [128..2047]: hole
${T}2: [2048..2063]: 0..15 16 blocks"

check "fiemap verbose" \
  " EXT: FILE-OFFSET      BLOCK-RANGE      TOTAL FLAGS
   0: [0..127]:        3520..3647         128   0x0
   1: [128..2047]:     hole              1920
   2: [2064..2175]:    123456789..123456900  112 0x801" \
  " EXT: FILE-OFFSET BLOCK-RANGE TOTAL FLAGS
 0: [0..127]: PHYS 128 0x0
 1: [128..2047]: hole 1920
 2: [2064..2175]: PHYS 112 0x801"

check "bmap verbose" \
  " EXT: FILE-OFFSET      BLOCK-RANGE      AG AG-OFFSET        TOTAL FLAGS
   0: [0..127]:        3520..3647        0 (3520..3647)       128 000000
   1: [128..2047]:     hole                                  1920
   2: [2048..2063]:    3392..3407       12 (3392..3407)        16 100000
 FLAG Values:
    0100000 Shared extent" \
  " EXT: FILE-OFFSET BLOCK-RANGE AG AG-OFFSET TOTAL FLAGS
 0: [0..127]: PHYS AG (AGOFF) 128 000000
 1: [128..2047]: hole 1920
 2: [2048..2063]: PHYS AG (AGOFF) 16 100000
 FLAG Values:
    0100000 Shared extent"

check "io reports" \
  "wrote 4096/4096 bytes at offset 0
4 KiB, 1 ops; 0.0000 sec (90.843 MiB/sec and 23255.8140 ops/sec)
read 32/32 bytes at offset 0
32.000000 bytes, 1 ops; 0:00:01.25 (2.035 MiB/sec and 66666.6667 ops/sec)
4096,1,0:00:00.00,341333333.333,83333.333" \
  "wrote 4096/4096 bytes at offset 0
4 KiB, 1 ops; TIME
read 32/32 bytes at offset 0
32.000000 bytes, 1 ops; TIME
4096,1,TIME"

check "program names" \
  "xfs_io: ioctl(FS_IOC_FIEMAP) [\"f\"]: Invalid argument
iomapsh: ioctl(FS_IOC_FIEMAP) [\"f\"]: Invalid argument
pwrite: No space left on device" \
  "PROG: ioctl(FS_IOC_FIEMAP) [\"f\"]: Invalid argument
PROG: ioctl(FS_IOC_FIEMAP) [\"f\"]: Invalid argument
pwrite: No space left on device"

check "seek and dumps untouched" \
  "Whence${T}Result
DATA${T}0
HOLE${T}65536
00000000:  61 61 61 61  aaaa" \
  "Whence${T}Result
DATA${T}0
HOLE${T}65536
00000000:  61 61 61 61  aaaa"

check "file listing" \
  " 000  file           (xfs,non-sync,non-direct,read-write)
[001] second         (foreign,non-sync,non-direct,read-write)" \
  " 000  file           (FSTYPE,non-sync,non-direct,read-write)
[001] second         (FSTYPE,non-sync,non-direct,read-write)"

V=$'   0: [0..127]:        3520..3647         128'
differ "fiemap flags" "$V   0x0" "$V 0x800"
differ "fiemap length" "   0: [0..127]:  3520..3647  128 0x1" \
  "   0: [0..119]:  3520..3639  120 0x1"
differ "delalloc vs allocated" "${T}0: [0..7]: 0..7" "${T}0: [0..7]: 96..103"
differ "hole vs extent" "${T}1: [8..15]: hole" "${T}1: [8..15]: 96..103"
differ "bmap shared flag" \
  "   0: [0..127]:  3520..3647  0 (3520..3647)  128 000000" \
  "   0: [0..127]:  3520..3647  0 (3520..3647)  128 100000"
differ "op counts" "64 KiB, 16 ops; 0.0000 sec (1 MiB/sec and 1.0 ops/sec)" \
  "64 KiB, 1 ops; 0.0000 sec (1 MiB/sec and 1.0 ops/sec)"
differ "file listing flags" " 000  file  (xfs,non-sync,non-direct,read-write)" \
  " 000  file  (xfs,sync,non-direct,read-write)"
differ "byte counts" "wrote 4096/4096 bytes at offset 0" \
  "wrote 0/4096 bytes at offset 0"

[ $FAILS -eq 0 ] || { echo "$FAILS normaliser checks failed"; exit 1; }
echo PASS
