"""Mark a symbol-version requirement (e.g. GLIBC_2.38) of ELF64 shared libraries weak.

``python elf_weak_version.py VERSION LIB...``: sets VER_FLG_WEAK on each ``Vernaux``
entry named VERSION in the library's SHT_GNU_verneed section, so the dynamic loader
warns instead of refusing to load it when libc lacks that version. Used by install.sh
after the symbols themselves were given unversioned stand-ins (libisoc23shim.so).
"""

import struct
import sys

SHT_GNU_VERNEED = 0x6FFFFFFE
VER_FLG_WEAK = 0x2


def weaken(path: str, version: bytes) -> int:
    d = bytearray(open(path, "rb").read())
    if d[:4] != b"\x7fELF" or d[4] != 2 or d[5] != 1:
        raise SystemExit(f"{path}: not a little-endian ELF64 file")
    (shoff,) = struct.unpack_from("<Q", d, 0x28)
    shentsize, shnum, _ = struct.unpack_from("<HHH", d, 0x3A)
    shs = [struct.unpack_from("<IIQQQQIIQQ", d, shoff + i * shentsize) for i in range(shnum)]
    n = 0
    for sh in shs:
        if sh[1] != SHT_GNU_VERNEED:
            continue
        stroff, off = shs[sh[6]][4], sh[4]
        while True:
            _, cnt, _, aux, nxt = struct.unpack_from("<HHIII", d, off)
            a = off + aux
            for _ in range(cnt):
                _, flags, _, name, anxt = struct.unpack_from("<IHHII", d, a)
                if bytes(d[stroff + name:d.index(b"\0", stroff + name)]) == version:
                    struct.pack_into("<H", d, a + 4, flags | VER_FLG_WEAK)
                    n += 1
                if not anxt:
                    break
                a += anxt
            if not nxt:
                break
            off += nxt
    open(path, "wb").write(d)
    return n


if __name__ == "__main__":
    ver = sys.argv[1].encode()
    for p in sys.argv[2:]:
        print(f"{p}: {weaken(p, ver)} {ver.decode()} requirement(s) made weak")
