#!/usr/bin/env python3
"""The HTTP listener and STOW-RS receive (issue 12), against the real listener (stow_driver:
host/http as the daemon wires it) with a spool in a temporary home, on loopback:

- two synthetic CT instances (`agora dicom synth`) in one POST: 200, both in
  ReferencedSOPSequence with their UIDs, both rows in spool.db (origin marker calling_ae STOW,
  called_ae ''), the spooled data sets byte-identical to the sent ones; the same POST again:
  200 (a duplicate is success), no new row; chunked transfer encoding works too;
- refusals: 415 (application/dicom, multipart of application/dicom+json, form-data), 400 (no
  boundary, no parts), 406, 404/405, 413 before the body (Content-Length), 413 for too many
  parts, 409 (unsupported SOP class -> 0x0122, a part that is not application/dicom -> 0xC000),
  202 (one stored, one refused);
- hostile: a truncated multipart (400, a FailedSOPSequence item 0xC000 with the part's UIDs, no
  row), a body cut by a closed socket, a slow-loris client sending its headers byte by byte
  (cut at the header deadline while another client is served), and the listener still serves;
- 503 with Retry-After once the spool is at its watermark (before the body is read);
- GET /healthz JSON; SIGTERM stops cleanly; no UID in the log.
Usage: stow_test.py AGORA STOW_DRIVER"""
import http.client
import json
import os
import socket
import sqlite3
import struct
import subprocess
import sys
import tempfile
import time

AGORA, DRIVER = sys.argv[1], sys.argv[2]
W = tempfile.mkdtemp(prefix="agora-stow.")
procs = []


def fail(msg):
    print("not ok:", msg)
    for p, log in procs:
        if p.poll() is None:
            p.kill()
            p.wait()
        print("--- driver log", log)
        with open(log) as f:
            print(f.read()[-3000:])
    sys.exit(1)


def ok(msg):
    print("ok:", msg)


def meta_of(data):
    """(sop_class, sop_instance, meta_len) from a Part 10 file's group 0002."""
    assert data[128:132] == b"DICM"
    glen = struct.unpack("<I", data[140:144])[0]
    end = 144 + glen
    at, uids = 144, {}
    while at < end:
        grp, el = struct.unpack("<HH", data[at:at + 4])
        vr = data[at + 4:at + 6]
        if vr in (b"OB", b"OW", b"UN", b"SQ", b"UT"):
            n = struct.unpack("<I", data[at + 8:at + 12])[0]
            hdr = 12
        else:
            n = struct.unpack("<H", data[at + 6:at + 8])[0]
            hdr = 8
        uids[el] = data[at + hdr:at + hdr + n].rstrip(b"\0 ").decode()
        at += hdr + n
    return uids[2], uids[3], end


def start(home, *args):
    log = os.path.join(W, "driver-%d.log" % len(procs))
    env = dict(os.environ, AGORA_LOG="debug")
    p = subprocess.Popen([DRIVER, home] + list(args), stdout=subprocess.PIPE,
                         stderr=open(log, "w"), env=env, text=True)
    procs.append((p, log))
    line = p.stdout.readline()
    if not line.startswith("port "):
        fail("the driver did not start: %r" % line)
    return p, int(line.split()[1]), log


def stop(p):
    p.send_signal(15)
    try:
        rc = p.wait(timeout=30)
    except subprocess.TimeoutExpired:
        fail("SIGTERM did not stop the listener within 30 s")
    if rc != 0 or "stopped" not in p.stdout.read():
        fail("SIGTERM: exit status %d" % rc)


def request(port, method, path, body=None, headers=None, timeout=30):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, dict((k.lower(), v) for k, v in r.getheaders()), data


CT = 'multipart/related; type="application/dicom"; boundary=%s'
B = "agoraTestBoundary"


def multipart(parts, boundary=B, close=True):
    out = b""
    for ctype, data in parts:
        out += b"--" + boundary.encode() + b"\r\n"
        if ctype is not None:
            out += b"Content-Type: " + ctype.encode() + b"\r\n"
        out += b"\r\n" + data + b"\r\n"
    if close:
        out += b"--" + boundary.encode() + b"--\r\n"
    return out


def stow(port, body, path="/dicomweb/studies", ctype=None, extra=None):
    h = {"Content-Type": ctype or CT % B, "Accept": "application/dicom+json"}
    h.update(extra or {})
    return request(port, "POST", path, body, h)


def seq(doc, tag):
    return doc.get(tag, {}).get("Value", [])


def sop_uids(items):
    return sorted(i["00081155"]["Value"][0] for i in items if "00081155" in i)


def reasons(doc):
    return [i["00081197"]["Value"][0] for i in seq(doc, "00081198")]


def rows(home):
    db = sqlite3.connect(os.path.join(home, "spool", "spool.db"))
    r = db.execute("SELECT sop_instance_uid, calling_ae, called_ae, path, dataset_bytes "
                   "FROM spool_instance ORDER BY sop_instance_uid").fetchall()
    db.close()
    return r


# ---- the instances ----
subprocess.run([AGORA, "dicom", "synth", "--modality", "CT", "--slices", "3", "--rows", "32",
                "--cols", "32", "-o", os.path.join(W, "ct")], check=True,
               stdout=subprocess.DEVNULL)
files = sorted(os.path.join(W, "ct", f) for f in os.listdir(os.path.join(W, "ct")))
inst = [open(f, "rb").read() for f in files]
metas = [meta_of(d) for d in inst]
uids = [m[1] for m in metas]

home = os.path.join(W, "home")
p, port, log = start(home, "header_ms=1500", "max_parts=4", "body_rate=1000",
                     "body_window_ms=1500")

# ---- health ----
st, h, data = request(port, "GET", "/healthz")
doc = json.loads(data)
if st != 200 or doc.get("status") != "ok" or doc["http"]["port"] != port or \
        "stow" not in doc or doc.get("listeners", [{}])[0].get("kind") != "http":
    fail("GET /healthz: %d %s" % (st, data[:300]))
ok("GET /healthz: 200 with http, stow and the daemon's listeners")

# ---- a route added by another module (as issue 14's pages will be) ----
st, h, data = request(port, "GET", "/test/echo/page%201?x=a%26b&y=2",
                      headers={"Cookie": "s=1; c=v2", "X-Test": "t"})
if st != 200 or json.loads(data) != {"rest": "/page 1", "x": "a&b", "c": "v2", "h": "t"}:
    fail("GET /test/echo/...: %d %s" % (st, data[:200]))
st, _, _ = request(port, "GET", "/test/echoX")
if st != 404:
    fail("a prefix route matched across a segment boundary: %d" % st)
st, _, _ = request(port, "POST", "/test/echo", body=b"x")
if st != 405:
    fail("POST to a GET route: %d" % st)
ok("a registered prefix route: path rest, query, cookie, header; /test/echoX 404; POST 405")

# ---- two instances ----
st, h, data = stow(port, multipart([("application/dicom", inst[0]),
                                    ("application/dicom", inst[1])]))
doc = json.loads(data)
if st != 200 or h.get("content-type") != "application/dicom+json":
    fail("2 instances: %d %s" % (st, data[:300]))
if sop_uids(seq(doc, "00081199")) != sorted(uids[:2]) or "00081198" in doc:
    fail("2 instances: ReferencedSOPSequence %s" % data[:400])
for i in seq(doc, "00081199"):
    if i["00081150"]["Value"][0] != metas[0][0] or "00081190" not in i:
        fail("a ReferencedSOPSequence item lacks its class or RetrieveURL: %s" % i)
r = rows(home)
if sorted(x[0] for x in r) != sorted(uids[:2]):
    fail("spool rows after 2 instances: %s" % r)
for uid, calling, called, path, n in r:
    if calling != "STOW" or called != "":
        fail("origin marker: calling %r called %r" % (calling, called))
    k = uids.index(uid)
    spooled = open(os.path.join(home, "spool", path), "rb").read()
    _, sp_uid, sp_meta = meta_of(spooled)
    if sp_uid != uid or spooled[sp_meta:] != inst[k][metas[k][2]:] or n != len(inst[k]) - metas[k][2]:
        fail("the spooled data set of instance %d differs from the one sent" % k)
ok("2 instances: 200, both in 00081199 and spool.db (origin STOW), data sets byte-identical")

st, h, data = stow(port, multipart([("application/dicom", inst[0]),
                                    ("application/dicom", inst[1])]))
doc = json.loads(data)
if st != 200 or sop_uids(seq(doc, "00081199")) != sorted(uids[:2]) or len(rows(home)) != 2:
    fail("resend: %d %s, %d rows" % (st, data[:300], len(rows(home))))
ok("the same 2 instances again: 200 (duplicates are success), still 2 rows")

# The same two with curl, the client an operator would try first (optional package).
if subprocess.run(["sh", "-c", "command -v curl"], stdout=subprocess.DEVNULL).returncode == 0:
    with open(os.path.join(W, "body2"), "wb") as f:
        f.write(multipart([("application/dicom", inst[0]), ("application/dicom", inst[1])]))
    out = subprocess.run(["curl", "-s", "-X", "POST", "-H", "Content-Type: " + CT % B,
                          "-H", "Accept: application/dicom+json", "-w", "\n%{http_code}",
                          "--data-binary", "@" + os.path.join(W, "body2"),
                          "http://127.0.0.1:%d/dicomweb/studies" % port],
                         capture_output=True, text=True, timeout=60).stdout
    text, code = out.rsplit("\n", 1)
    if code != "200" or sop_uids(seq(json.loads(text), "00081199")) != sorted(uids[:2]):
        fail("curl POST of 2 instances: %s %s" % (code, text[:300]))
    ok("curl POST of the 2 instances: 200, both in 00081199")
else:
    print("note: curl not installed; the curl POST is left out")

# Chunked, to /dicomweb/studies/{StudyUID}, the part without a Content-Type header.
c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
body = multipart([(None, inst[2])])
c.putrequest("POST", "/dicomweb/studies/1.2.3.4")
c.putheader("Content-Type", CT % B)
c.putheader("Transfer-Encoding", "chunked")
c.endheaders()
for at in range(0, len(body), 1000):
    piece = body[at:at + 1000]
    c.send(b"%x\r\n" % len(piece) + piece + b"\r\n")
c.send(b"0\r\n\r\n")
resp = c.getresponse()
data = resp.read()
c.close()
if resp.status != 200 or sop_uids(seq(json.loads(data), "00081199")) != [uids[2]]:
    fail("chunked POST to /dicomweb/studies/{uid}: %d %s" % (resp.status, data[:300]))
ok("chunked body to /dicomweb/studies/{StudyUID}, part without Content-Type: 200")
n_rows = len(rows(home))

# ---- refusals ----
def expect(status, what, **kw):
    st, h, data = stow(port, kw.pop("body", multipart([("application/dicom", inst[0])])), **kw)
    if st != status:
        fail("%s: expected %d, got %d %s" % (what, status, st, data[:200]))
    return h, data


expect(415, "Content-Type application/dicom", ctype="application/dicom")
expect(415, "multipart of application/dicom+json",
       ctype='multipart/related; type="application/dicom+json"; boundary=%s' % B)
expect(415, "multipart/form-data", ctype="multipart/form-data; boundary=%s" % B)
expect(400, "no boundary", ctype='multipart/related; type="application/dicom"')
expect(400, "no parts", body=b"--%s--\r\n" % B.encode())
expect(406, "Accept XML only", extra={"Accept": "application/dicom+xml"})
expect(404, "a path below a study", path="/dicomweb/studies/1.2.3/series")
expect(404, "a study UID that is not a UID", path="/dicomweb/studies/abc")
st, h, _ = request(port, "GET", "/dicomweb/studies")
if st != 405 or "POST" not in h.get("allow", ""):
    fail("GET /dicomweb/studies: %d %s" % (st, h))
st, _, _ = request(port, "GET", "/nothing")
if st != 404:
    fail("GET /nothing: %d" % st)
h, data = expect(413, "too many parts", body=multipart([("application/dicom", d) for d in inst] * 2))
doc = json.loads(data)
if sop_uids(seq(doc, "00081199")) != sorted(uids[:3] + uids[:1]) or 0xA700 not in reasons(doc):
    fail("413 for too many parts does not list what was stored: %s" % data[:600])
ok("415 x3, 400 x2, 406, 404 x2, 405 with Allow, 413 for a 5th part (stored ones listed)")

# A SOP class the listener does not take (Basic Text SR), a part that is not DICOM.
cls = metas[0][0]
other = "1." + "9" * (len(cls) - 2)  # a UID of the same length that no listener list has
sr = inst[0].replace(cls.encode(), other.encode(), 1)  # the first one is the meta's
st, h, data = stow(port, multipart([("application/dicom", sr), ("image/jpeg", b"\xff\xd8")]))
doc = json.loads(data)
if st != 409 or sorted(reasons(doc)) != [0x0122, 0xC000] or "00081199" in doc:
    fail("unsupported class + JPEG part: %d %s" % (st, data[:400]))
if sop_uids(seq(doc, "00081198")) != [uids[0]]:
    fail("the 0x0122 item does not name the instance: %s" % data[:400])
st, h, data = stow(port, multipart([("application/dicom", inst[1]), ("text/plain", b"hello")]))
doc = json.loads(data)
if st != 202 or reasons(doc) != [0xC000] or sop_uids(seq(doc, "00081199")) != [uids[1]]:
    fail("one stored, one refused: %d %s" % (st, data[:400]))
ok("409 (0x0122 with its UIDs, 0xC000), 202 (one stored, one refused)")

st, h, data = stow(port, b"x" * 100)  # no delimiter at all
if st != 400:
    fail("a body without a delimiter: %d" % st)

# ---- hostile ----
# A truncated multipart: part 1 complete, no close delimiter, its data set cut.
new = bytearray(inst[0])
new_uid = uids[0][:-1] + ("1" if uids[0][-1] != "1" else "2")
new = bytes(new).replace(uids[0].encode(), new_uid.encode(), 1)
trunc = multipart([("application/dicom", new)], close=False)[:-300]
st, h, data = stow(port, trunc)
doc = json.loads(data)
if st != 400 or reasons(doc) != [0xC000] or sop_uids(seq(doc, "00081198")) != [new_uid]:
    fail("truncated multipart: %d %s" % (st, data[:400]))
if "truncated" not in h.get("warning", ""):
    fail("the truncated answer has no Warning saying why: %s" % h)
if len(rows(home)) != n_rows:
    fail("a truncated part left a row")
ok("truncated multipart: 400, FailedSOPSequence 0xC000 naming the part, Warning, no row")

# A body cut by the client closing its socket mid-part (Content-Length promised more).
s = socket.create_connection(("127.0.0.1", port), timeout=10)
body = multipart([("application/dicom", new)])
s.sendall(b"POST /dicomweb/studies HTTP/1.1\r\nHost: x\r\nContent-Type: " + (CT % B).encode() +
          b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body[:len(body) // 2])
time.sleep(0.3)
s.close()
time.sleep(0.3)
if len(rows(home)) != n_rows:
    fail("a part cut by a closed socket left a row")
st, _, _ = request(port, "GET", "/healthz")
if st != 200:
    fail("after a cut body the listener does not serve: %d" % st)
ok("a body cut by a closed socket: nothing stored, the listener still serves")

# Headers larger than the per-connection memory (64 KiB): 431 from libmicrohttpd, which then
# closes with our unread bytes pending, so the kernel may reset before we read the answer.
s = socket.create_connection(("127.0.0.1", port), timeout=10)
try:
    s.sendall(b"POST /dicomweb/studies HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100000 +
              b"\r\n\r\n")
    answer = s.recv(100)
except ConnectionResetError:
    answer = b"(reset)"
s.close()
if not (answer.startswith(b"HTTP/1.1 431") or answer == b"(reset)"):
    fail("oversize headers: %r" % answer)
st, _, _ = request(port, "GET", "/healthz")
if st != 200:
    fail("after oversize headers the listener does not serve: %d" % st)
ok("oversize request headers: %s; the listener still serves" %
   ("431" if answer != b"(reset)" else "refused (connection reset)"))

# Slow-loris: headers byte by byte, 0.2 s apart; cut at the 1.5 s header deadline while
# another client is served.
s = socket.create_connection(("127.0.0.1", port), timeout=10)
line = b"POST /dicomweb/studies HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 200
t0 = time.monotonic()
cut_at = None
served = False
for i, b in enumerate(line):
    try:
        s.send(bytes([b]))
    except OSError:
        cut_at = time.monotonic() - t0
        break
    if i == 3:
        st, _, _ = request(port, "GET", "/healthz", timeout=5)
        served = st == 200
    s.settimeout(0.2)
    try:
        if s.recv(1) == b"":
            cut_at = time.monotonic() - t0
            break
    except socket.timeout:
        pass
    except OSError:
        cut_at = time.monotonic() - t0
        break
s.close()
if cut_at is None or not 1.2 <= cut_at <= 8:
    fail("slow-loris: not cut at the 1.5 s header deadline (cut at %s)" % cut_at)
if not served:
    fail("slow-loris: another client was not served meanwhile")
st, _, _ = request(port, "GET", "/healthz")
if st != 200:
    fail("after slow-loris the listener does not serve")
with open(log) as f:
    if "request headers not complete within 1500 ms" not in f.read():
        fail("the log does not say why the slow connection was cut")
ok("slow-loris headers cut after %.1f s (deadline 1.5 s); another client served meanwhile" % cut_at)

# A trickled body: headers at once, then 10 bytes every 0.3 s (33 B/s, the minimum is
# 1000 B/s over 1.5 s windows): cut, while another client is served; nothing stored.
s = socket.create_connection(("127.0.0.1", port), timeout=10)
body = multipart([("application/dicom", new)])
s.sendall(b"POST /dicomweb/studies HTTP/1.1\r\nHost: x\r\nContent-Type: " + (CT % B).encode() +
          b"\r\nContent-Length: %d\r\n\r\n" % len(body))
t0 = time.monotonic()
cut_at = None
served = False
for i in range(0, len(body), 10):
    try:
        s.send(body[i:i + 10])
    except OSError:
        cut_at = time.monotonic() - t0
        break
    if i == 20:
        st, _, _ = request(port, "GET", "/healthz", timeout=5)
        served = st == 200
    s.settimeout(0.3)
    try:
        if s.recv(1) == b"":
            cut_at = time.monotonic() - t0
            break
    except socket.timeout:
        pass
    except OSError:
        cut_at = time.monotonic() - t0
        break
    if time.monotonic() - t0 > 20:
        break
s.close()
if cut_at is None or not 1.2 <= cut_at <= 10 or not served:
    fail("trickled body: cut at %s, other client served %s" % (cut_at, served))
if len(rows(home)) != n_rows:
    fail("a trickled body left a row")
with open(log) as f:
    if "request body slower than 1000 bytes/s over 1500 ms" not in f.read():
        fail("the log does not say why the trickled body was cut")
ok("a body trickled at 33 B/s cut after %.1f s (1000 B/s over 1.5 s); another client served" % cut_at)

stop(p)
ok("SIGTERM: clean stop")

# ---- 413 before the body, 503 over the watermark ----
p, port, log2 = start(home, "max_body=1000")
s = socket.create_connection(("127.0.0.1", port), timeout=10)
s.sendall(b"POST /dicomweb/studies HTTP/1.1\r\nHost: x\r\nContent-Type: " + (CT % B).encode() +
          b"\r\nContent-Length: 5000000\r\nExpect: 100-continue\r\n\r\n")
answer = s.recv(4096)
s.close()
if not answer.startswith(b"HTTP/1.1 413"):
    fail("Content-Length over the limit: %r" % answer[:100])
stop(p)
ok("413 on a Content-Length over the limit, before any body byte (no 100 Continue)")

home2 = os.path.join(W, "home2")
p, port, log3 = start(home2, "watermark=1")
st, _, data = stow(port, multipart([("application/dicom", inst[0])]))
if st != 200:
    fail("below the watermark: %d %s" % (st, data[:200]))
st, h, data = stow(port, multipart([("application/dicom", inst[1])]))
if st != 503 or h.get("retry-after") != "7":
    fail("over the watermark: %d %s %s" % (st, h, data[:200]))
if len(rows(home2)) != 1:
    fail("over the watermark an instance was stored")
st, _, data = request(port, "GET", "/healthz")
if json.loads(data)["stow"]["over_watermark"] is not True:
    fail("/healthz does not say over_watermark: %s" % data)
stop(p)
ok("503 with Retry-After over the watermark (nothing stored); /healthz says so")

# ---- no UIDs in the logs ----
for _, lg in procs:
    text = open(lg).read()
    for u in uids + [new_uid, "1.2.3.4"]:
        if u in text:
            fail("a UID is in the log %s" % lg)
ok("no UID in the logs")
subprocess.run(["rm", "-rf", W])
