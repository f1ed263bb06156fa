# Turns record.sh output into xfs_io_golden_data.inc:
#   python3 emit_inc.py OUT_DIR OUTPUT.inc
import json, glob, os
import sys
G=sys.argv[1]
files={}
for f in sorted(glob.glob(G+'/s*.json')):
    files[os.path.basename(f)[:-5]]=json.load(open(f))
def cstr(s):
    # C++ raw string literal
    assert ')gold"' not in s
    return 'R"gold(' + s + ')gold"'
out=[]
out.append('// Golden outputs recorded from Debian xfsprogs 6.1 xfs_io on XFS (4 KiB')
out.append('// blocks, 4 AGs of 32768 blocks) over a loop device, with the raw FIEMAP')
out.append('// extents and SEEK_DATA/SEEK_HOLE data ranges of the same files. The')
out.append('// generator (client/golden/record.sh, emit_inc.py) ran each command in a')
out.append('// fresh xfs_io process; see')
out.append('// xfs_io_golden_test.cc for how the fakes answer from these records.')
out.append('// Generated file: regenerate rather than edit by hand.')
out.append('')
for name,d in files.items():
    ex=',\n     '.join('{%dULL, %dULL, %dULL, 0x%x}'%tuple(e) for e in d['extents'])
    dr=', '.join('{%d, %d}'%tuple(r) for r in d['data'])
    out.append('const GoldenFile k%s = {"%s", %d,\n    {%s},\n    {%s}};' % (name.capitalize(), name, d['size'], ex, dr))
out.append('')
out.append('const GoldenCase kCases[] = {')
for c in sorted(glob.glob(G+'/*.cmd')):
    n=c[:-4]
    f,cmd=open(c).read().rstrip('\n').split('|',1)
    exp=open(n+'.out').read()
    out.append('    {&k%s, "%s",\n     %s},' % (f.capitalize(), cmd, cstr(exp)))
out.append('};')
open(sys.argv[2],'w').write('\n'.join(out)+'\n')
