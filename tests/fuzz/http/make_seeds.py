#!/usr/bin/env python3
"""Seeds for fuzz_stow_multipart and fuzz_stow_meta (tests/fuzz/seeds/<target>/): small
Part 10 files (file meta group + a tiny data set) in STOW-RS bodies. The first byte of an
input picks the read sizes (see the targets); a multipart input may start with a Content-Type
line."""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
SEEDS = os.path.join(HERE, "../seeds")


def el(elem, vr, value):
    if len(value) & 1:
        value += b"\0" if vr == b"UI" else b" "
    if vr in (b"OB", b"UN"):
        return struct.pack("<HH", 2, elem) + vr + b"\0\0" + struct.pack("<I", len(value)) + value
    return struct.pack("<HH", 2, elem) + vr + struct.pack("<H", len(value)) + value


def part10(sop=b"1.2.3.4.5.6.7.8", cls=b"1.2.840.10008.5.1.4.1.1.2", ts=b"1.2.840.10008.1.2.1"):
    g = (el(1, b"OB", b"\0\1") + el(2, b"UI", cls) + el(3, b"UI", sop) + el(0x10, b"UI", ts) +
         el(0x12, b"UI", b"1.2.3") + el(0x13, b"SH", b"SEED"))
    head = b"\0" * 128 + b"DICM" + struct.pack("<HH", 2, 0) + b"UL" + struct.pack("<HI", 4, len(g))
    data = struct.pack("<HH", 8, 0x60) + b"CS" + struct.pack("<H", 2) + b"CT"
    return head + g + data


CT = b'multipart/related; type="application/dicom"; boundary=agoraFuzzB\n'


def body(parts, b=b"agoraFuzzB", close=True):
    out = b""
    for ctype, data in parts:
        out += b"--" + b + b"\r\n" + (b"Content-Type: " + ctype + b"\r\n" if ctype else b"")
        out += b"\r\n" + data + b"\r\n"
    return out + (b"--" + b + b"--\r\n" if close else b"")


one, two = part10(), part10(sop=b"1.2.3.4.5.6.7.9")
multipart = {
    "two": b"\x00" + CT + body([(b"application/dicom", one), (b"application/dicom", two)]),
    "two_bytewise": b"\x00" + body([(b"application/dicom", one), (b"application/dicom", two)]),
    "quoted": b"\x05" + b'Multipart/Related; boundary="a b:c"; type=application/dicom\n' +
              body([(None, one)], b=b"a b:c"),
    "truncated": b"\x03" + CT + body([(b"application/dicom", one)], close=False)[:-20],
    "padding_preamble": b"\x07" + CT + b"preamble\r\n" +
                        body([(b"application/dicom", one)]).replace(b"agoraFuzzB\r\n",
                                                                    b"agoraFuzzB \t\r\n", 1) +
                        b"epilogue",
    "wrong_type": b"\x21" + CT + body([(b"image/jpeg", b"\xff\xd8"), (b"application/dicom", one)]),
    "stop_second": b"\x40" + CT + body([(b"application/dicom", one), (b"application/dicom", two)]),
}
meta = {
    "ct": b"\x00" + one,
    "ct_bytewise": b"\x00" + one[:len(one) - 12],
    "ct_steps": b"\x11" + one,
    "no_dicm": b"\x00" + b"\0" * 128 + b"XXXX" + one[132:],
}
for target, seeds in (("fuzz_stow_multipart", multipart), ("fuzz_stow_meta", meta)):
    d = os.path.join(SEEDS, target)
    os.makedirs(d, exist_ok=True)
    for name, data in seeds.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
