# Prints the raw FS_IOC_FIEMAP extents and SEEK_DATA/SEEK_HOLE data ranges
# of a file as JSON (input of emit_inc.py).
import fcntl, struct, sys, os, json
FS_IOC_FIEMAP = 0xC020660B
def fiemap(path, start, length, count=512, flags=1):
    hdr = struct.pack('=QQIIII', start, length, flags, 0, count, 0)
    buf = bytearray(hdr + b'\0' * (56 * count))
    fd = os.open(path, os.O_RDONLY)
    fcntl.ioctl(fd, FS_IOC_FIEMAP, buf)
    os.close(fd)
    _, _, _, mapped, _, _ = struct.unpack_from('=QQIIII', buf, 0)
    ex = []
    for i in range(mapped):
        l, p, ln, _, _, fl, _, _, _ = struct.unpack_from('=QQQQQIIII', buf, 32 + 56 * i)
        ex.append((l, p, ln, fl))
    return ex
def data_ranges(path):
    fd = os.open(path, os.O_RDONLY); size = os.fstat(fd).st_size; r = []; off = 0
    while True:
        try: d = os.lseek(fd, off, os.SEEK_DATA)
        except OSError: break
        h = os.lseek(fd, d, os.SEEK_HOLE); r.append((d, h)); off = h
        if h >= size: break
    os.close(fd); return r
p = sys.argv[1]
start = int(sys.argv[2]) if len(sys.argv) > 2 else 0
length = int(sys.argv[3]) if len(sys.argv) > 3 else (1 << 64) - 1
print(json.dumps({"size": os.stat(p).st_size, "extents": fiemap(p, start, length), "data": data_ranges(p)}))
