#!/usr/bin/python3
# SR checks of seg_export.sh on one exported Comprehensive 3D SR, against the stored result it
# came from: SOP class and flags, root 126000 with template TID 1500 (DCMR), language, device
# observer (the Contributing Equipment's Device UID), procedure reported = the imaging
# procedure of the modality, one Measurement Group per planar region / SEG segment / other
# finding (+ one for region-less measurements), each with 112039/112040 (UIDs unique) and
# 111001/111003 = the plugin; every SCOORD with its SELECTED FROM IMAGE child on the region's
# real source instance and the coordinates converted to DICOM's pixel-corner origin; every
# measurement as a NUM with UCUM units; confidence as 111012 in %; volumetric groups naming the
# SEG's instance and an existing segment; summary, triage; every referenced instance listed in
# CurrentRequestedProcedureEvidenceSequence; source references are real source instances.
# Usage: sr_check.py SR_FILE INVOCATION SHOW_JSON HOME SOURCE_DIR STUDY_UID OUT_DIR
import glob, json, os, sys
import numpy as np, pydicom
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from export_checks import source_instances

f, inv, showp, home, studies, study, outdir = sys.argv[1:]
ds = pydicom.dcmread(f)
res = [r for r in json.load(open(showp))['results'] if r['invocation_id'] == inv][0]
bad = []


def check(c, what):
    if not c:
        bad.append(what)


def cn(it):
    c = it.ConceptNameCodeSequence[0] if 'ConceptNameCodeSequence' in it else None
    return (c.CodingSchemeDesignator, c.CodeValue) if c else None


def children(it, code=None):
    return [c for c in getattr(it, 'ContentSequence', []) if code is None or (cn(c) and cn(c)[1] == code)]


def one(it, code):
    c = children(it, code)
    check(len(c) == 1, 'exactly one item %s (got %d)' % (code, len(c)))
    return c[0] if c else None


src = source_instances(studies, res['series_uid'])
srcone = next(iter(src.values()))
frames = {e['frame']: e for e in res['frames']}

check(ds.SOPClassUID == '1.2.840.10008.5.1.4.1.1.88.34', 'SOP class Comprehensive 3D SR')
check(ds.Modality == 'SR' and ds.CompletionFlag == 'COMPLETE' and ds.VerificationFlag == 'UNVERIFIED', 'flags')
check(ds.StudyInstanceUID == study == res['study_uid'], 'real Study Instance UID')
check(ds.PatientID == srcone.PatientID and ds.PatientName == srcone.PatientName, 'Patient module copied')
check(ds.ValueType == 'CONTAINER' and cn(ds) == ('DCM', '126000'), 'root 126000')
tpl = ds.ContentTemplateSequence[0]
check(tpl.MappingResource == 'DCMR' and tpl.TemplateIdentifier == '1500', 'template 1500')
lang = one(ds, '121049')
check(lang and lang.RelationshipType == 'HAS CONCEPT MOD' and lang.ConceptCodeSequence[0].CodeValue == 'en-US', 'language')
obs = one(ds, '121005')
check(obs and obs.ConceptCodeSequence[0].CodeValue == '121007', 'observer type device')
dev = one(ds, '121012')
check(dev and dev.UID == ds.ContributingEquipmentSequence[0].DeviceUID, 'device observer UID = AIR Device UID')
check(one(ds, '121013').TextValue == res['plugin']['id'], 'device observer name')
proc = one(ds, '121058').ConceptCodeSequence[0]
want_proc = {'CT': '25045-6', 'MR': '25056-3'}[srcone.Modality]
check(proc.CodeValue == want_proc and proc.CodingSchemeDesignator == 'LN', 'procedure reported = imaging procedure')

lib = one(ds, '111028')
lib_refs = [im.ReferencedSOPSequence[0].ReferencedSOPInstanceUID
            for g in children(lib, '126200') for im in children(g) if im.ValueType == 'IMAGE']
check(lib_refs and set(lib_refs) <= set(src), 'image library lists real source instances')
check(set(frames[k]['sop_instance_uid'] for k in frames) <= set(lib_refs), 'image library covers the result frames')

ims = one(ds, '126010')
groups = children(ims, '125007')
seg_path = os.path.join(outdir, 'seg-%s.dcm' % inv)
masks = [r for r in res['regions'] if r['kind'] == 'mask']
seg = pydicom.dcmread(seg_path) if masks else None
n_segments = len(seg.SegmentSequence) if seg else 0
planar = [r for r in res['regions'] if r['kind'] != 'mask']
placed = set()
for r in res['regions']:
    for i, fd in enumerate(res['findings']):
        if fd.get('region') == r['id']:
            placed.add(i)
            break
loose = any(m.get('region') is None for m in res['measurements'])
want_groups = len(planar) + n_segments + (len(res['findings']) - len(placed))
want_groups += 1 if (loose or want_groups == 0) else 0
check(len(groups) == want_groups, 'groups: %d, expected %d' % (len(groups), want_groups))
uids = []
nums = []
for g in groups:
    tid = g.ContentTemplateSequence[0].TemplateIdentifier
    check(tid in ('1410', '1411', '1501'), 'group template')
    ti, tu = one(g, '112039'), one(g, '112040')
    check(ti and ti.ValueType == 'TEXT' and ti.TextValue, 'group 112039')
    check(tu and tu.ValueType == 'UIDREF', 'group 112040')
    uids.append(tu.UID if tu else None)
    check(one(g, '111001').TextValue == res['plugin']['id'], 'group 111001 = plugin id')
    check(one(g, '111003').TextValue == res['plugin']['version'], 'group 111003 = version')
    for s in children(g, '111030'):
        check(s.ValueType == 'SCOORD', 'image region is SCOORD')
        kids = [k for k in children(s) if k.ValueType == 'IMAGE' and k.RelationshipType == 'SELECTED FROM']
        check(len(kids) == 1, 'SCOORD has one SELECTED FROM IMAGE child')
        rid = int(ti.TextValue.split()[1].rstrip(':'))
        reg = [r for r in res['regions'] if r['id'] == rid][0]
        sop = kids[0].ReferencedSOPSequence[0].ReferencedSOPInstanceUID if kids else None
        check(sop == frames[reg['frame']]['sop_instance_uid'] and sop in src, 'SCOORD image is the region frame')
        p = np.array(reg['points'], float)
        if reg['kind'] == 'point':
            want, gt = p + 0.5, 'POINT'
        elif reg['kind'] == 'polygon':
            want, gt = np.vstack([p, p[:1]]) + 0.5, 'POLYLINE'
        else:
            (l, t), (r_, b) = p.min(0), p.max(0) + 1
            want, gt = np.array([[l, t], [r_, t], [r_, b], [l, b], [l, t]]), 'POLYLINE'
        got = np.array([float(x) for x in s.GraphicData]).reshape(-1, 2)
        check(s.GraphicType == gt and got.shape == want.shape and np.allclose(got, want, atol=1e-3),
              'SCOORD coordinates of region %d' % rid)
    for im in children(g, '121191'):
        rs = im.ReferencedSOPSequence[0]
        check(rs.ReferencedSOPClassUID == '1.2.840.10008.5.1.4.1.1.66.4' and
              rs.ReferencedSOPInstanceUID == seg.SOPInstanceUID, 'referenced segment names the SEG')
        check(1 <= rs.ReferencedSegmentNumber <= n_segments, 'referenced segment number exists')
        check(one(g, '121232').UID == res['series_uid'], 'source series for segmentation')
    if tid == '1411':
        check(len(children(g, '121191')) == 1, 'volumetric group references a segment')
    for nm in children(g):
        if nm.ValueType != 'NUM':
            continue
        mv = nm.MeasuredValueSequence[0]
        u = mv.MeasurementUnitsCodeSequence[0]
        check(u.CodingSchemeDesignator == 'UCUM', 'NUM units UCUM')
        nums.append((cn(nm)[1], float(mv.NumericValue), u.get('CodeValue') or u.LongCodeValue, g))
check(len(set(uids)) == len(uids) and None not in uids, 'tracking UIDs unique')
# every measurement exactly once, with its unit (DS keeps 16 characters: compare to 9 digits);
# confidence as 111012 in %
from collections import Counter
key = lambda v, u: (float('%.9g' % v), u)
want_m = Counter(key(m['value'], m['unit']) for m in res['measurements'])
got_m = Counter(key(n[1], n[2]) for n in nums if n[0] != '111012')
check(want_m == got_m, 'measurements as NUMs (value, UCUM unit): missing %s, extra %s' %
      (list((want_m - got_m).items())[:3], list((got_m - want_m).items())[:3]))
for i, fd in enumerate(res['findings']):
    gs = [g for g in groups for c in children(g, '121071')
          if (c.ConceptCodeSequence[0].get('CodeValue') or c.ConceptCodeSequence[0].LongCodeValue) == fd['code']['code']]
    check(gs, 'finding %s coded' % fd['code']['code'])
    conf = [n for n in nums if n[0] == '111012' and n[3] in gs and abs(n[1] - 100 * fd['confidence']) < 1e-6]
    check(conf and conf[0][2] == '%', 'confidence of finding %d as 111012 in %%' % i)
qe = children(ds, 'C0034375')
summary = res.get('summary')
if summary:
    check(qe and one(qe[0], '121111').TextValue == summary, 'summary text')
urgent = [c for q in qe for c in children(q, '260870009')]
if res.get('triage', {}).get('urgent'):
    check(len(urgent) == 1 and urgent[0].ConceptCodeSequence[0].CodeValue == '103391001', 'triage Priority = Urgent')
    check(one(qe[0], '121106').TextValue == res['triage']['reason'], 'triage reason')
else:
    check(not urgent, 'no Priority item without triage')

# every referenced instance in the evidence sequence
def refs(it, out):
    for k in getattr(it, 'ContentSequence', []):
        for r in getattr(k, 'ReferencedSOPSequence', []):
            out.add(r.ReferencedSOPInstanceUID)
        refs(k, out)
    return out
ev = {}
for st in ds.CurrentRequestedProcedureEvidenceSequence:
    check(st.StudyInstanceUID == study, 'evidence study is the real study')
    for se in st.ReferencedSeriesSequence:
        for r in se.ReferencedSOPSequence:
            ev[r.ReferencedSOPInstanceUID] = se.SeriesInstanceUID
used = refs(ds, set())
check(used and used <= set(ev), 'every referenced instance is in the evidence sequence')
check(all(ev[u] == res['series_uid'] for u in ev if u in src), 'source instances under the source series')
check(set(ev) <= set(src) | ({seg.SOPInstanceUID} if seg else set()), 'evidence = real source instances and the SEG')
if seg:
    check(ev.get(seg.SOPInstanceUID) == seg.SeriesInstanceUID, 'SEG in the evidence under its series')
print('ok: %s: %d groups, %d NUM, %d references' % (os.path.basename(f), len(groups), len(nums), len(used)))
if bad:
    print('FAILED checks:', bad)
    sys.exit(1)
