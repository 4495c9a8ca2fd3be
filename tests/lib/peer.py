#!/usr/bin/python3
"""REST, QIDO-RS and STOW helpers for Orthanc as the PACS in `agora serve` tests (issue 12).

Python standard library only. Every call goes to an Orthanc the test started on loopback inside
its own network namespace (tests/lib/netns_peer.sh). Commands print one plain line (a number, an
id, or space-separated words) so shell tests compare them directly; errors go to stderr with a
non-zero exit status.

  peer.py wait-rest URL SECONDS
  peer.py upload URL FILE|DIR...          -> the Study Instance UID(s) uploaded, one a line
  peer.py study-id URL STUDY_UID          -> Orthanc's id of the study
  peer.py store URL MODALITY STUDY_UID [SERIES_MODALITY]
                                          -> "instances=N failed=F remote=AE" (C-STORE by Orthanc
                                             of the study, or of its series of that modality)
  peer.py stow URL SERVER STUDY_UID       -> "instances=N" (Orthanc's STOW-RS client)
  peer.py series URL STUDY_UID MODALITY   -> the number of series of that modality (QIDO-RS)
  peer.py instances URL STUDY_UID MODALITY-> the number of instances of that modality (QIDO-RS)
  peer.py sops URL STUDY_UID MODALITY     -> the SOP Instance UIDs, sorted, one a line
  peer.py remote-aets URL STUDY_UID MODALITY -> the sending AE titles (RemoteAET), sorted, unique
  peer.py wait-instances URL STUDY_UID MODALITY N SECONDS -> the count once >= N (exit 1: timeout)
  peer.py download URL STUDY_UID MODALITY DIR -> writes DIR/<n>.dcm, prints how many
  peer.py delete-study URL STUDY_UID
  peer.py stow-post URL CTYPE FILE...     -> "status=N retry-after=R" of one STOW-RS POST of the
                                             files to URL (CTYPE "multipart": a proper
                                             multipart/related body; else that Content-Type)
  peer.py stow-sink PORT FILE             -> a minimal STOW-RS receiver (harness self-test only):
                                             appends "parts=N type=..." per POST to FILE
"""
import json
import os
import sys
import time
import urllib.error
import urllib.request

TIMEOUT = 60


def req(method, url, body=None, headers=None):
    r = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(r, timeout=TIMEOUT) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def get_json(url):
    accept = 'application/dicom+json' if '/dicom-web/' in url else 'application/json'
    status, data = req('GET', url, headers={'Accept': accept})
    if status == 204 or not data.strip():
        return []
    if status != 200:
        raise SystemExit(f'peer: GET {url}: HTTP {status}: {data[:300]!r}')
    return json.loads(data)


def post_json(url, obj):
    status, data = req('POST', url, json.dumps(obj).encode(), {'Content-Type': 'application/json'})
    if status != 200:
        raise SystemExit(f'peer: POST {url}: HTTP {status}: {data[:400]!r}')
    return json.loads(data) if data.strip() else None


def study_id(base, uid):
    status, data = req('POST', base + '/tools/lookup', uid.encode())
    if status != 200:
        raise SystemExit(f'peer: lookup: HTTP {status}')
    for m in json.loads(data):
        if m.get('Type') == 'Study':
            return m['ID']
    raise SystemExit('peer: the study is not in Orthanc')


def tag(d, key):
    v = d.get(key, {}).get('Value')
    return v[0] if v else None


def qido_instances(base, uid, modality):
    """Instances of the study whose series has MODALITY (QIDO-RS, series then instances)."""
    out = []
    for s in get_json(f'{base}/dicom-web/studies/{uid}/series?Modality={modality}'):
        se = tag(s, '0020000E')
        out.extend(get_json(f'{base}/dicom-web/studies/{uid}/series/{se}/instances'))
    return out


def orthanc_instances(base, uid, modality):
    """Orthanc ids of the instances of the study's series of MODALITY (REST)."""
    found = post_json(base + '/tools/find', {
        'Level': 'Series', 'Expand': True,
        'Query': {'StudyInstanceUID': uid, 'Modality': modality}})
    return [i for s in found for i in s['Instances']]


def stow_sink(port, log):
    """Answer POST /dicomweb/studies with one ReferencedSOPSequence item per part (what Orthanc's
    client checks, test-peers.md 2.5). Only to check the harness's Orthanc STOW server entry."""
    import http.server

    class H(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            n = int(self.headers.get('Content-Length', '0') or 0)
            if n > (256 << 20):
                self.send_error(413)
                return
            body = self.rfile.read(n) if n else b''
            if not n and self.headers.get('Transfer-Encoding', '').lower() == 'chunked':
                chunks, total = [], 0
                while True:
                    size = int(self.rfile.readline().strip() or b'0', 16)
                    total += size
                    if size == 0 or total > (256 << 20):
                        self.rfile.readline()
                        break
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
                body = b''.join(chunks)
            ctype = self.headers.get('Content-Type', '')
            b = ctype.split('boundary=')[-1].split(';')[0].strip().strip('"').encode()
            parts = body.count(b'--' + b + b'\r\n')
            with open(log, 'a') as fh:
                fh.write(f'path={self.path} parts={parts} type={ctype.split(";")[0]}\n')
            out = json.dumps({'00081199': {'vr': 'SQ', 'Value': [{} for _ in range(parts)]}})
            self.send_response(200)
            self.send_header('Content-Type', 'application/dicom+json')
            self.send_header('Content-Length', str(len(out)))
            self.end_headers()
            self.wfile.write(out.encode())

        def log_message(self, *args):
            pass

    http.server.HTTPServer(('127.0.0.1', port), H).serve_forever()


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    cmd, base = argv[1], argv[2].rstrip('/')
    a = argv[3:]
    if cmd == 'stow-sink':
        stow_sink(int(base), a[0])
        return 0
    if cmd == 'wait-rest':
        end = time.monotonic() + float(a[0])
        while time.monotonic() < end:
            try:
                if req('GET', base + '/system')[0] == 200:
                    return 0
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.05)
        return 1
    if cmd == 'upload':
        seen = []
        files = []
        for p in a:
            if os.path.isdir(p):
                files += sorted(os.path.join(r, f) for r, _, fs in os.walk(p) for f in fs)
            else:
                files.append(p)
        for f in files:
            with open(f, 'rb') as fh:
                status, data = req('POST', base + '/instances', fh.read(),
                                   {'Content-Type': 'application/dicom'})
            if status != 200:
                raise SystemExit(f'peer: upload {os.path.basename(f)}: HTTP {status}')
            st = json.loads(data)['ParentStudy']
            if st not in seen:
                seen.append(st)
        for st in seen:
            print(get_json(f'{base}/studies/{st}')['MainDicomTags']['StudyInstanceUID'])
        return 0
    if cmd == 'study-id':
        print(study_id(base, a[0]))
        return 0
    if cmd == 'store':
        res = [study_id(base, a[1])]
        if len(a) > 2:  # only the study's series of that modality
            res = [s['ID'] for s in post_json(base + '/tools/find', {
                'Level': 'Series', 'Query': {'StudyInstanceUID': a[1], 'Modality': a[2]},
                'Expand': True})]
        r = post_json(f'{base}/modalities/{a[0]}/store', {'Resources': res, 'Synchronous': True})
        print(f"instances={r['InstancesCount']} failed={r['FailedInstancesCount']} "
              f"remote={r['RemoteAet']}")
        return 0 if int(r['FailedInstancesCount']) == 0 else 1
    if cmd == 'stow':
        r = post_json(f'{base}/dicom-web/servers/{a[0]}/stow',
                      {'Resources': [study_id(base, a[1])], 'Synchronous': True})
        print(f"instances={r['InstancesCount']}")
        return 0
    if cmd == 'series':
        print(len(get_json(f'{base}/dicom-web/studies/{a[0]}/series?Modality={a[1]}')))
        return 0
    if cmd == 'instances':
        print(len(qido_instances(base, a[0], a[1])))
        return 0
    if cmd == 'sops':
        for u in sorted(tag(i, '00080018') for i in qido_instances(base, a[0], a[1])):
            print(u)
        return 0
    if cmd == 'remote-aets':
        aets = set()
        for i in orthanc_instances(base, a[0], a[1]):
            status, data = req('GET', f'{base}/instances/{i}/metadata/RemoteAET')
            aets.add(data.decode().strip() if status == 200 else '?')
        print(' '.join(sorted(aets)))
        return 0
    if cmd == 'wait-instances':
        want, end = int(a[2]), time.monotonic() + float(a[3])
        n = 0
        while True:
            n = len(qido_instances(base, a[0], a[1]))
            if n >= want or time.monotonic() >= end:
                break
            time.sleep(0.25)
        print(n)
        return 0 if n >= want else 1
    if cmd == 'download':
        os.makedirs(a[2], exist_ok=True)
        ids = orthanc_instances(base, a[0], a[1])
        for n, i in enumerate(ids):
            status, data = req('GET', f'{base}/instances/{i}/file')
            if status != 200:
                raise SystemExit(f'peer: download: HTTP {status}')
            with open(os.path.join(a[2], f'{a[1]}{n:03d}.dcm'), 'wb') as fh:
                fh.write(data)
        print(len(ids))
        return 0
    if cmd == 'stow-post':
        bnd = 'agoraPeerBoundary7'
        body = b''
        for f in a[1:]:
            with open(f, 'rb') as fh:
                body += (f'--{bnd}\r\nContent-Type: application/dicom\r\n\r\n'.encode() +
                         fh.read() + b'\r\n')
        body += f'--{bnd}--\r\n'.encode()
        ctype = (f'multipart/related; type="application/dicom"; boundary={bnd}'
                 if a[0] == 'multipart' else a[0])
        r = urllib.request.Request(base, data=body, method='POST', headers={
            'Content-Type': ctype, 'Accept': 'application/dicom+json'})
        try:
            with urllib.request.urlopen(r, timeout=TIMEOUT) as resp:
                status, retry = resp.status, resp.headers.get('Retry-After')
        except urllib.error.HTTPError as e:
            status, retry = e.code, e.headers.get('Retry-After')
        print(f'status={status} retry-after={retry or "-"}')
        return 0
    if cmd == 'delete-study':
        status, _ = req('DELETE', f'{base}/studies/{study_id(base, a[0])}')
        return 0 if status == 200 else 1
    print(f'peer: unknown command {cmd}', file=sys.stderr)
    return 2


if __name__ == '__main__':
    sys.exit(main(sys.argv))
