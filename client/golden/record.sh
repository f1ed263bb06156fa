#!/bin/bash
# Records xfs_io outputs and raw FIEMAP/SEEK answers for xfs_io_golden_test.
# Run as root on a mounted XFS (mkfs.xfs defaults, 4 KiB blocks), then:
#   python3 emit_inc.py OUT_DIR ../xfs_io_golden_data.inc
# Builds scenario files on the XFS mount and records xfs_io outputs.
set -e
M=${1:?usage: record.sh XFS_MOUNT_DIR OUT_DIR}; G=${2:?usage: record.sh XFS_MOUNT_DIR OUT_DIR}; HERE=$(cd "$(dirname "$0")" && pwd); rm -rf $G; mkdir -p $G; cd $M; rm -f s*
xfs_io -f -c 'pwrite -S 0xab 0 64k' -c 'pwrite -S 0xcd 1m 8k' -c 'falloc 2m 64k' -c fsync s1 >/dev/null
args=(-f)
for i in $(seq 0 39); do args+=(-c "pwrite -S $i $((i*131072)) 4k"); done
xfs_io "${args[@]}" -c 'pwrite 3g 4k' -c fsync s2 >/dev/null
xfs_io -f -c 'pwrite -S 0x61 0 64k' -c fsync s3src >/dev/null
xfs_io -f -c 'pwrite -S 0x62 0 128k' -c 'reflink s3src 0 64k 64k' -c fsync s3 >/dev/null
xfs_io -f -c 'falloc -k 0 1m' s4 >/dev/null
xfs_io -f s5
xfs_io -f -c 'truncate 1m' s6
xfs_io -f -c 'pwrite 0 5000' -c fsync s7 >/dev/null
xfs_io -f -c 'pwrite 0 8k' -c 'falloc -k 64k 64k' -c 'pwrite 256k 4k' -c fsync s8 >/dev/null
i=0
while IFS='|' read -r file cmd; do
  i=$((i+1)); n=$(printf %02d $i)
  xfs_io -c "$cmd" $file > $G/$n.out 2>&1 || true
  echo "$file|$cmd" > $G/$n.cmd
done <<'LIST'
s1|fiemap
s1|fiemap -v
s1|fiemap -l
s1|fiemap -v 64k 1m
s1|fiemap 16k 16k
s1|fiemap -v 16k 16k
s1|fiemap -n 2
s1|fiemap -v -n 3
s1|bmap
s1|bmap -v
s1|bmap -vp
s1|bmap -vvp
s1|bmap -l
s1|seek -a -r 0
s1|seek -d 0
s1|seek -h 0
s1|seek -s -a -r 0
s1|seek -a 70000
s1|seek -d 3m
s1|seek -h -r 0
s1|seek -d -r 0
s1|seek -s -h 1m
s2|fiemap -v
s2|fiemap
s2|bmap -v
s2|seek -a -r 0
s3|fiemap -v
s3|bmap -v
s3|bmap -vp
s3|bmap -vv
s4|fiemap -v
s4|bmap -vp
s4|seek -a -r 0
s5|fiemap -v
s5|bmap -v
s5|seek -a 0
s6|fiemap -v
s6|bmap -v
s6|seek -a -r 0
s6|seek -s -h 4096
s7|fiemap -v
s7|bmap -v
s7|seek -a -r 0
s8|fiemap -v
s8|fiemap -v 0 128k
s8|bmap -vp
s8|seek -a -r 0
LIST
for f in s1 s2 s3 s4 s5 s6 s7 s8; do python3 "$HERE/raw_extents.py" $f > $G/$f.json; done
