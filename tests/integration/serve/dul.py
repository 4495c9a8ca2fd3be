"""A tiny DICOM upper-layer client for the serve tests: builds PDUs by hand (so tests can
also build broken ones), reads PDUs back. Loopback only; every read has a timeout."""
import socket
import struct
import time

VERIFICATION = "1.2.840.10008.1.1"
CT = "1.2.840.10008.5.1.4.1.1.2"
IMPLICIT = "1.2.840.10008.1.2"
EXPLICIT = "1.2.840.10008.1.2.1"
APP_CONTEXT = "1.2.840.10008.3.1.1.1"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def item(t, value):
    return struct.pack(">BBH", t, 0, len(value)) + value


def pdu(t, body):
    return struct.pack(">BBI", t, 0, len(body)) + body


def assoc_rq(called="AGORA", calling="PYTEST", contexts=None, max_pdu=16384):
    contexts = contexts or [(1, VERIFICATION, [IMPLICIT])]
    body = struct.pack(">HH", 1, 0) + called.ljust(16).encode() + calling.ljust(16).encode()
    body += bytes(32) + item(0x10, APP_CONTEXT.encode())
    for pcid, abstract, tss in contexts:
        sub = item(0x30, abstract.encode()) + b"".join(item(0x40, t.encode()) for t in tss)
        body += item(0x20, bytes([pcid, 0, 0, 0]) + sub)
    body += item(0x50, item(0x51, struct.pack(">I", max_pdu)) + item(0x52, b"1.2.3.4"))
    return pdu(0x01, body)


def elem(e, value):
    if len(value) % 2:
        value += b"\0"
    return struct.pack("<HHI", 0, e, len(value)) + value


def command(field, msg_id=1, sop_class=VERIFICATION, sop_instance=None, data_set=0x0101):
    body = elem(0x0002, sop_class.encode()) + elem(0x0100, struct.pack("<H", field))
    body += elem(0x0110, struct.pack("<H", msg_id))
    if field == 0x0001:
        body += elem(0x0700, struct.pack("<H", 0))
    body += elem(0x0800, struct.pack("<H", data_set))
    if sop_instance:
        body += elem(0x1000, sop_instance.encode())
    return elem(0x0000, struct.pack("<I", len(body))) + body


def pdata(pcid, control, data):
    return pdu(0x04, struct.pack(">IBB", len(data) + 2, pcid, control) + data)


class Conn:
    def __init__(self, port, timeout=10.0):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.s.settimeout(timeout)

    def send(self, b):
        self.s.sendall(b)

    def recv_exact(self, n):
        out = b""
        while len(out) < n:
            chunk = self.s.recv(n - len(out))
            if not chunk:
                raise EOFError("connection closed after %d of %d bytes" % (len(out), n))
            out += chunk
        return out

    def read_pdu(self):
        """(type, body); raises EOFError when the peer closed."""
        h = self.recv_exact(6)
        t, _, n = struct.unpack(">BBI", h)
        if n > 1 << 20:
            raise ValueError("PDU of %d bytes from the server" % n)
        return t, self.recv_exact(n)

    def closed_within(self, seconds):
        """True when the server closes the connection within seconds (reading what comes)."""
        end = time.time() + seconds
        self.s.settimeout(0.5)
        while time.time() < end:
            try:
                if not self.s.recv(65536):
                    return True
            except socket.timeout:
                continue
            except (ConnectionResetError, BrokenPipeError):
                return True
        return False

    def close(self):
        self.s.close()


def associate(port, **kw):
    """An established association, or raises with the PDU type received."""
    c = Conn(port)
    c.send(assoc_rq(**kw))
    t, body = c.read_pdu()
    if t != 0x02:
        c.close()
        raise RuntimeError("association not accepted: PDU 0x%02x %s" % (t, body.hex()))
    return c


def echo(port, calling="PYTEST"):
    """One C-ECHO on a fresh association; returns the status (0 = success)."""
    c = associate(port, calling=calling)
    c.send(pdata(1, 0x03, command(0x0030)))
    t, body = c.read_pdu()
    assert t == 0x04, "expected P-DATA, got 0x%02x" % t
    data = body[6:]
    status = None
    off = 0
    while off + 8 <= len(data):
        _, e, n = struct.unpack("<HHI", data[off:off + 8])
        if e == 0x0900:
            status = struct.unpack("<H", data[off + 8:off + 10])[0]
        off += 8 + n
    c.send(pdu(0x05, bytes(4)))
    t, _ = c.read_pdu()
    assert t == 0x06, "expected A-RELEASE-RP, got 0x%02x" % t
    c.close()
    return status


def wait_echo(port, seconds=20):
    end = time.time() + seconds
    while time.time() < end:
        try:
            if echo(port) == 0:
                return True
        except (OSError, EOFError, RuntimeError):
            time.sleep(0.1)
    return False
