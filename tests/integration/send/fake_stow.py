"""A STOW-RS server with scripted answers for the send tests, on 127.0.0.1 only (inside the
test's network namespace). The first path segment picks the answer:
  /ok/studies        200, a ReferencedSOPSequence item per part
  /partial/studies   202, the first part in FailedSOPSequence (reason 0x0110), the others referenced
  /conflict/studies  409, every part failed
  /busy/studies      503 with Retry-After
  /redirect/studies  302 to another host
  /huge/studies      200 with an 8 MiB body
  /slow/studies      reads the body, then answers nothing for 30 s
It checks the request: multipart/related; type="application/dicom", a boundary, every part a
Part 10 file ("DICM" at 128); a malformed request gets 400.
With CERT and KEY it serves HTTPS with that (self-signed) certificate.
Usage: fake_stow.py PORT [CERT KEY]
"""
import http.server
import json
import re
import ssl
import struct
import sys
import time


def sop_uid(part):
    i = part.find(b"\x02\x00\x03\x00UI")
    n = struct.unpack("<H", part[i + 6:i + 8])[0]
    return part[i + 8:i + 8 + n].rstrip(b"\0").decode()


def ref(uid, reason=None):
    d = {"00081155": {"vr": "UI", "Value": [uid]}}
    if reason is not None:
        d["00081197"] = {"vr": "US", "Value": [reason]}
    return d


class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def answer(self, status, body, headers=()):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/dicom+json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        ct = self.headers.get("Content-Type", "")
        m = re.search(r"boundary=([0-9A-Za-z'()+_,./:=?-]+)", ct)
        if not ct.startswith("multipart/related") or 'type="application/dicom"' not in ct or not m:
            return self.answer(400, {"error": "content type"})
        parts = body.split(b"--" + m.group(1).encode())
        files = []
        for p in parts[1:]:
            if p.startswith(b"--"):
                break
            head, _, payload = p.partition(b"\r\n\r\n")
            payload = payload[:-2] if payload.endswith(b"\r\n") else payload
            if b"application/dicom" not in head or payload[128:132] != b"DICM":
                return self.answer(400, {"error": "part"})
            files.append(sop_uid(payload))
        mode = self.path.strip("/").split("/")[0]
        if mode == "ok":
            return self.answer(200, {"00081199": {"vr": "SQ", "Value": [ref(u) for u in files]}})
        if mode == "partial":
            return self.answer(202, {
                "00081198": {"vr": "SQ", "Value": [ref(files[0], 0x0110)]},
                "00081199": {"vr": "SQ", "Value": [ref(u) for u in files[1:]]}})
        if mode == "conflict":
            return self.answer(409, {"00081198": {"vr": "SQ", "Value": [ref(u, 0xA700) for u in files]}})
        if mode == "busy":
            return self.answer(503, {}, [("Retry-After", "30")])
        if mode == "redirect":
            return self.answer(302, {}, [("Location", "http://192.0.2.1/dicomweb/studies")])
        if mode == "huge":
            return self.answer(200, b"[" + b" " * (8 << 20) + b"]")
        if mode == "slow":
            time.sleep(30)
            return
        self.answer(404, {})


http.server.ThreadingHTTPServer.daemon_threads = True
srv = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H)
if len(sys.argv) == 4:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(sys.argv[2], sys.argv[3])
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
srv.serve_forever()
