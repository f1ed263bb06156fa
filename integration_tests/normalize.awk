# Normalises xfs_io / iomapsh output so that the two can be compared: masks
# only what must differ between a kernel XFS file and an iomapd file.
#  - the program name that starts an error line (xfs_io: / iomapsh:);
#  - the elapsed time and rates of pread/pwrite/reflink/... reports
#    ("4 KiB, 1 ops; 0.0000 sec (...)" keeps the size and the op count,
#    and so does -C's "bytes,ops,time,rate,rate" line);
#  - physical block addresses in fiemap and bmap rows ("a..b" -> PHYS; a
#    range starting at 0 is FIEMAP's delalloc marker and is kept), and bmap
#    -v's allocation-group number and AG offset (-> AG (AGOFF)). Rows of the
#    verbose tables have their column padding collapsed to single spaces,
#    because xfs_io sizes those columns from the widest physical address;
#  - the filesystem type in the "file" listing ("(xfs," or "(foreign,").
# Logical ranges, lengths, flags and hole lines are left as they are.

function phys(tok) {
  if (tok ~ /^[0-9]+\.\.[0-9]+$/ && tok !~ /^0\.\./) return "PHYS"
  return tok
}

# A verbose fiemap/bmap row or header: tokens joined by single spaces.
function table_row(line,    n, t, i, out) {
  n = split(line, t, /[ \t]+/)
  out = ""
  for (i = 1; i <= n; i++) {
    if (t[i] == "") continue
    if (i >= 2 && t[i - 1] ~ /^\[[0-9]+\.\.[0-9]+\]:$/) t[i] = phys(t[i])
    if (t[i] ~ /^\([0-9]+\.\.[0-9]+\)$/) {
      t[i] = "(AGOFF)"
      sub(/ [0-9]+$/, " AG", out)
    }
    out = out (out == "" ? "" : " ") t[i]
  }
  return out
}

{
  line = $0
  sub(/^(xfs_io|iomapsh): /, "PROG: ", line)
  if (line ~ /^[ \[][0-9][0-9][0-9][ \]] /)
    sub(/ \((xfs|foreign),/, " (FSTYPE,", line)
  if (line ~ /, [0-9]+ ops; .*sec/) {
    sub(/ ops; .*$/, " ops; TIME", line)
  } else if (line ~ /^[0-9]+,[0-9]+,[0-9:.]+,[0-9.]+,[0-9.]+$/) {
    sub(/,[0-9:.]+,[0-9.]+,[0-9.]+$/, ",TIME", line)
  } else if (line ~ /^\t[0-9]+: \[[0-9]+\.\.[0-9]+\]: [0-9]+\.\.[0-9]+/) {
    n = split(line, t, " ")
    t[3] = phys(t[3])
    line = "\t" t[1]
    for (i = 2; i <= n; i++) line = line " " t[i]
  } else if (line ~ /^ *[0-9]+: \[[0-9]+\.\.[0-9]+\]: / || line ~ /^ *EXT: /) {
    line = " " table_row(line)
  }
  print line
}
