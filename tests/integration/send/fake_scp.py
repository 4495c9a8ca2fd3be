"""A hostile DICOM SCP for the send tests: one behaviour per connection, chosen on the command
line. Listens on 127.0.0.1 only (inside the test's network namespace), serves connections
until it is killed by its pid. Every socket read has a timeout; nothing it does is unbounded.

Behaviours (after reading the A-ASSOCIATE-RQ, unless said otherwise):
  garbage      answer 64 random bytes (an unknown PDU type)
  oversize     answer a P-DATA-TF header announcing 0x7FFFFFF0 bytes
  big-ac       answer an A-ASSOCIATE-AC header announcing 1 MiB
  silent       accept the TCP connection and never answer
  trickle      answer one byte of an A-ASSOCIATE-AC every 0.5 s
  close        close the connection at once
  abort        answer A-ABORT
  rj-transient answer A-ASSOCIATE-RJ 2/3/1 (congestion)
  rj-permanent answer A-ASSOCIATE-RJ 1/1/7 (called AE not recognized)
  ac-stall     accept every proposed context, then read and never answer a C-STORE
  ac-garbage   accept, then answer the C-STORE with a P-DATA-TF of malformed PDV items
  ac-wrongid   accept, then answer a C-STORE-RSP for another message id
"""
import os
import socket
import struct
import sys
import threading
import time

APP_CONTEXT = b"1.2.840.10008.3.1.1.1"


def item(t, value):
    return struct.pack(">BBH", t, 0, len(value)) + value


def pdu(t, body):
    return struct.pack(">BBI", t, 0, len(body)) + body


def read_exact(c, n):
    b = b""
    while len(b) < n:
        part = c.recv(n - len(b))
        if not part:
            raise EOFError
        b += part
    return b


def read_pdu(c):
    h = read_exact(c, 6)
    t, n = h[0], struct.unpack(">I", h[2:6])[0]
    if n > 1 << 20:
        raise ValueError("peer PDU too large")
    return t, read_exact(c, n)


def contexts(rq_body):
    """(id, first transfer syntax) of each proposed context."""
    out, off = [], 68
    while off + 4 <= len(rq_body):
        t, n = rq_body[off], struct.unpack(">H", rq_body[off + 2:off + 4])[0]
        v = rq_body[off + 4:off + 4 + n]
        if t == 0x20:
            pcid, sub, ts = v[0], 4, None
            while sub + 4 <= len(v):
                st, sn = v[sub], struct.unpack(">H", v[sub + 2:sub + 4])[0]
                if st == 0x40 and ts is None:
                    ts = v[sub + 4:sub + 4 + sn]
                sub += 4 + sn
            out.append((pcid, ts))
        off += 4 + n
    return out


def assoc_ac(rq_body):
    body = struct.pack(">HH", 1, 0) + rq_body[4:36] + b"\0" * 32 + item(0x10, APP_CONTEXT)
    for pcid, ts in contexts(rq_body):
        body += item(0x21, bytes([pcid, 0, 0, 0]) + item(0x40, ts))
    body += item(0x50, item(0x51, struct.pack(">I", 16384)))
    return pdu(0x02, body)


def store_rsp(msg_id, pcid, sop_class=b"1.2.840.10008.5.1.4.1.1.2\0"):
    def elem(e, v):
        return struct.pack("<HHI", 0, e, len(v)) + v
    cmd = (elem(0x0002, sop_class) + elem(0x0100, struct.pack("<H", 0x8001)) +
           elem(0x0120, struct.pack("<H", msg_id)) + elem(0x0800, struct.pack("<H", 0x0101)) +
           elem(0x0900, struct.pack("<H", 0)))
    cmd = elem(0x0000, struct.pack("<I", len(cmd))) + cmd
    return pdu(0x04, struct.pack(">IBB", len(cmd) + 2, pcid, 0x03) + cmd)


def read_command(c):
    """Read P-DATA until the last command fragment; returns (pcid, message id)."""
    data, pcid = b"", 1
    while True:
        t, b = read_pdu(c)
        if t != 0x04:
            raise EOFError
        off = 0
        while off + 6 <= len(b):
            n = struct.unpack(">I", b[off:off + 4])[0]
            pcid, ctl = b[off + 4], b[off + 5]
            if ctl & 1:
                data += b[off + 6:off + 4 + n]
                if ctl & 2:
                    i = data.find(struct.pack("<HH", 0, 0x0110))
                    return pcid, struct.unpack("<H", data[i + 8:i + 10])[0]
            off += 4 + n


def serve(c, mode):
    c.settimeout(30)
    if mode == "silent":
        time.sleep(30)
        return
    if mode == "close":
        return
    t, rq = read_pdu(c)
    if mode == "garbage":
        c.sendall(bytes([0x09]) + os.urandom(63))
    elif mode == "oversize":
        c.sendall(struct.pack(">BBI", 0x04, 0, 0x7FFFFFF0) + b"\0" * 64)
    elif mode == "big-ac":
        c.sendall(struct.pack(">BBI", 0x02, 0, 1 << 20) + b"\0" * 64)
    elif mode == "trickle":
        for b in assoc_ac(rq):
            c.sendall(bytes([b]))
            time.sleep(0.5)
    elif mode == "abort":
        c.sendall(pdu(0x07, b"\0\0\2\0"))
    elif mode == "rj-transient":
        c.sendall(pdu(0x03, b"\0\2\3\1"))
    elif mode == "rj-permanent":
        c.sendall(pdu(0x03, b"\0\1\1\7"))
    elif mode.startswith("ac-"):
        c.sendall(assoc_ac(rq))
        if mode == "ac-stall":
            end = time.time() + 30
            while time.time() < end and c.recv(65536):
                pass
            return
        pcid, msg_id = read_command(c)
        # Drain the data set until its last fragment.
        while True:
            t, b = read_pdu(c)
            if t == 0x04 and b[5] & 2:
                break
        if mode == "ac-garbage":
            c.sendall(pdu(0x04, struct.pack(">I", 0xFFFF) + b"\1\3"))
        else:
            c.sendall(store_rsp(msg_id + 7, pcid))
    time.sleep(2)  # let the SCU read what was sent before the close


def main():
    mode, port = sys.argv[1], int(sys.argv[2])
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(8)
    while True:
        c, _ = s.accept()

        def run(c=c):
            try:
                serve(c, mode)
            except (OSError, EOFError, ValueError):
                pass
            finally:
                c.close()
        threading.Thread(target=run, daemon=True).start()


if __name__ == "__main__":
    main()
