#!/bin/bash
# End to end: iomapd-mkfs then iomapd-fsck on image files for every block
# size, and fsck failing (exit 1, problem named) on a damaged image.
set -u
MKFS="$TEST_SRCDIR/$TEST_WORKSPACE/fs/iomapd-mkfs"
FSCK="$TEST_SRCDIR/$TEST_WORKSPACE/fs/iomapd-fsck"
DIR="${TEST_TMPDIR:-/tmp}"
fail() { echo "FAIL: $*"; exit 1; }

for bs in 512 1024 4096 65536; do
  img="$DIR/img.$bs"
  rm -f "$img"
  "$MKFS" --block_size=$bs --size=$((32 << 20)) "$img" || fail "mkfs bs=$bs"
  out=$("$FSCK" "$img") || fail "fsck bs=$bs: $out"
  echo "$out" | grep -q "clean (0 problems)" || fail "fsck output bs=$bs: $out"
done

img="$DIR/img.4096"
# One flipped byte in checkpoint slot A's payload (block 1, after the header).
printf '\xff' | dd of="$img" bs=1 seek=$((4096 + 100)) conv=notrunc 2>/dev/null
out=$("$FSCK" "$img"); rc=$?
[ $rc -eq 1 ] || fail "fsck exit $rc on a damaged checkpoint: $out"
echo "$out" | grep -q "slot A: bad payload checksum" || fail "no problem named: $out"

# A bad block size and a missing file are refused.
"$MKFS" --block_size=3000 --size=$((1 << 20)) "$DIR/bad" 2>/dev/null && fail "mkfs bs=3000"
"$FSCK" "$DIR/missing" >/dev/null 2>&1; [ $? -eq 2 ] || fail "fsck of a missing file"
echo PASS
