# Shared by seg_check.py and sr_check.py (seg_export.sh): the real source instances of a series.
import glob, os
import pydicom


def source_instances(studies, series_uid):
    """SOP Instance UID -> header of every source file of series_uid under studies."""
    src = {}
    for p in glob.glob(studies + '/**/*', recursive=True):
        if os.path.isfile(p):
            s = pydicom.dcmread(p, stop_before_pixels=True)
            if s.SeriesInstanceUID == series_uid:
                src[s.SOPInstanceUID] = s
    return src
