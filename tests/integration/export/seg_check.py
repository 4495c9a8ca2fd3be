#!/usr/bin/python3
# SEG checks of seg_export.sh on one exported Segmentation: the pydicom round trip (the
# unpacked frames rebuild every stored label mask byte for byte, 8 or 16 bits), exact PixelData
# length, references to the real source series/instances, Patient module and equipment.
# Usage: seg_check.py SEG_FILE INVOCATION SHOW_JSON HOME SOURCE_DIR STUDY_UID
import glob, hashlib, json, os, sys
import numpy as np, pydicom
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from export_checks import source_instances
f, inv, showp, home, studies, study = sys.argv[1:]
ds = pydicom.dcmread(f)
raw = open(f, 'rb').read()
res = [r for r in json.load(open(showp))['results'] if r['invocation_id'] == inv][0]
bad = []
def check(c, what):
    if not c: bad.append(what)
check(ds.SOPClassUID == '1.2.840.10008.5.1.4.1.1.66.4', 'SOP class')
check(ds.StudyInstanceUID == study == res['study_uid'], 'real Study Instance UID')
check(ds.Modality == 'SEG' and ds.SegmentationType == 'BINARY', 'modality/type')
check(ds.ManufacturerModelName == res['plugin']['id'] and ds.SoftwareVersions == res['plugin']['version'], 'equipment')
vendor = json.load(open(home + '/plugins/' + res['plugin']['id'] + '/manifest.json'))['vendor']
check(ds.Manufacturer == vendor, 'vendor as Manufacturer')
ce = ds.ContributingEquipmentSequence[0]
check(ce.PurposeOfReferenceCodeSequence[0].CodeMeaning == 'Processing Algorithm' and ce.DeviceUID, 'AIR contributing equipment')
# source files: real UIDs and Patient module
src = source_instances(studies, res['series_uid'])
one = next(iter(src.values()))
check(ds.PatientName == one.PatientName and ds.PatientID == one.PatientID, 'Patient module copied')
rs = ds.ReferencedSeriesSequence[0]
check(rs.SeriesInstanceUID == res['series_uid'], 'ReferencedSeriesSequence names the source series')
refs = {r.ReferencedSOPInstanceUID for r in rs.ReferencedInstanceSequence}
check(refs and refs <= set(src), 'referenced instances are real source instances')
# the round trip: rebuild every mask from its segments
nf = int(ds.NumberOfFrames); R, C = ds.Rows, ds.Columns
check(len(ds.PixelData) == ((nf * R * C + 7) // 8 + 1) // 2 * 2, 'PixelData length exact')
bits = np.unpackbits(np.frombuffer(ds.PixelData, np.uint8), bitorder='little')[:nf * R * C].reshape(nf, R, C)
frames = {e['frame']: e for e in res['frames']}
seg_label = {}
for s in ds.SegmentSequence:
    seg_label[s.SegmentNumber] = s.SegmentLabel
    check(s.SegmentAlgorithmType == 'AUTOMATIC', 'algorithm type')
sop_of_pos = {}
masks = [r for r in res['regions'] if r['kind'] == 'mask']
check(len(masks) >= 1, 'result has a mask')
segno = 0
for m in masks:
    mk = m['mask']
    data = open(glob.glob(home + '/results/*/' + mk['sha256'] + '.mask')[0], 'rb').read()
    ebytes = mk['bits'] // 8
    want = np.frombuffer(data, '<u%d' % ebytes).reshape(mk['frames'], mk['rows'], mk['columns'])
    values = sorted(set(np.unique(want)) - {0})
    got = np.zeros_like(want)
    for v in values:
        segno += 1
        for k, pf in enumerate(ds.PerFrameFunctionalGroupsSequence):
            if pf.SegmentIdentificationSequence[0].ReferencedSegmentNumber != segno:
                continue
            idx = pf.FrameContentSequence[0].DimensionIndexValues[1] - 1
            fr = frames[idx]
            srcimg = pf.DerivationImageSequence[0].SourceImageSequence[0]
            check(srcimg.ReferencedSOPInstanceUID == fr['sop_instance_uid'], 'derivation reference')
            s = src[fr['sop_instance_uid']]
            check([float(x) for x in pf.PlanePositionSequence[0].ImagePositionPatient] ==
                  [float(x) for x in s.ImagePositionPatient], 'plane position of frame')
            got[idx - mk['first_frame']][bits[k] == 1] = v
    check(got.tobytes() == want.tobytes(), 'unpacked frames equal the stored mask byte for byte')
check(study.encode() in raw, 'real study UID in the bytes')
print('ok: %s: %d frames, %d segments, %d refs%s' % (os.path.basename(f), nf, len(seg_label), len(refs),
      ', 16-bit mask' if any(m['mask']['bits'] == 16 for m in masks) else ''))
if bad:
    print('FAILED checks:', bad); sys.exit(1)
