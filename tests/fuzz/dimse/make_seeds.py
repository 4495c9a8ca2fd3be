#!/usr/bin/env python3
"""Seeds for fuzz_dimse_pdu and fuzz_dimse_command (tests/fuzz/seeds/<target>/), built with
the serve tests' upper-layer client (tests/integration/serve/dul.py). The first byte of a
fuzz_dimse_pdu input chooses read sizes and limits (see fuzz_pdu.c)."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "../../integration/serve"))
import dul  # noqa: E402

SEEDS = os.path.join(HERE, "../seeds")
CT_UID = "1.2.3.4.5.6.7"
rq = dul.assoc_rq(calling="PYTEST", contexts=[(1, dul.VERIFICATION, [dul.IMPLICIT]),
                                               (3, dul.CT, [dul.EXPLICIT, dul.IMPLICIT])])
echo = dul.pdata(1, 3, dul.command(0x30))
store = (dul.pdata(3, 3, dul.command(0x01, 2, dul.CT, CT_UID, 0)) +
         dul.pdata(3, 0, b"\x08\x00\x16\x00UI\x04\x001.2\x00") + dul.pdata(3, 2, b"\x10\x00"))
release = dul.pdu(5, bytes(4))
pdu_seeds = {
    "rq": b"\x00" + rq,
    "echo": b"\x00" + rq + echo + release,
    "store": b"\x00" + rq + store + release,
    "store_bytewise": b"\x02" + rq + store + echo + release,
    "store_abort": b"\x01" + rq + store[:60] + dul.pdu(7, bytes(4)),
}
cmd_seeds = {
    "echo": dul.command(0x30),
    "store": dul.command(0x01, 7, dul.CT, CT_UID, 0),
}
for target, seeds in (("fuzz_dimse_pdu", pdu_seeds), ("fuzz_dimse_command", cmd_seeds)):
    d = os.path.join(SEEDS, target)
    os.makedirs(d, exist_ok=True)
    for name, data in seeds.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
