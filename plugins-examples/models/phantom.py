"""Synthetic CT phantoms with a known "lesion" mask, for training and testing the segmentation
examples (onnx-segment, torch-segment).

A phantom is an axial CT volume in Hounsfield units: air, an elliptic body with a fat layer,
soft tissue, two lungs, a spine, a liver and two kidneys (the layout of `agora dicom synth`,
with every size, position and intensity drawn at random), and one ellipsoid lesion brighter
than soft tissue (90-160 HU) whose voxels are the truth. Gaussian noise (sigma 6-20 HU) makes a
per-voxel threshold fail: the lesion's contrast is only a few noise sigmas, so a model has to
look at neighbourhoods. The same generator makes the 2-D training slices and the held-out 3-D
test studies; only the seed differs.
"""
import numpy as np

# The model's input: HU mapped by (HU - CENTER) / SCALE and clipped to +-CLIP. The plugins do the
# same in plugins-examples/segment/segment.hpp; change both together.
HU_CENTER = 40.0
HU_SCALE = 200.0
HU_CLIP = 5.0


def normalize(hu):
    return np.clip((hu - HU_CENTER) / HU_SCALE, -HU_CLIP, HU_CLIP).astype(np.float32)


def _ellipsoid(x, y, z, c, r):
    return ((x - c[0]) / r[0]) ** 2 + ((y - c[1]) / r[1]) ** 2 + ((z - c[2]) / r[2]) ** 2 <= 1.0


def random_anatomy(rng, zlen):
    """Organs as (centre mm, radii mm, HU) drawn at random; the body is centred at 0."""
    bw, bh = rng.uniform(130, 170), rng.uniform(90, 120)
    long = zlen / 2 + 400  # structures that run through the whole volume
    organs = [
        ((0, 0, 0), (bw, bh, long), rng.uniform(30, 50)),               # body (skin/soft tissue)
        ((0, 0, 0), (bw - 10, bh - 10, long), rng.uniform(-110, -70)),  # subcutaneous fat
        ((0, 0, 0), (bw - 20, bh - 18, long), rng.uniform(25, 45)),     # muscle / viscera
    ]
    lz = rng.uniform(-zlen, zlen)
    for side in (-1, 1):  # lungs
        organs.append(((side * rng.uniform(55, 80), rng.uniform(-20, 0), lz),
                       (rng.uniform(35, 50), rng.uniform(45, 65), rng.uniform(40, 120)),
                       rng.uniform(-900, -750)))
    organs.append(((0, bh * 0.6, 0), (rng.uniform(14, 22),) * 2 + (long,), rng.uniform(500, 900)))
    organs.append(((rng.uniform(-70, -40), rng.uniform(0, 20), rng.uniform(-zlen, zlen)),
                   (rng.uniform(45, 65), rng.uniform(35, 50), rng.uniform(40, 90)),
                   rng.uniform(50, 70)))  # liver
    kz = rng.uniform(-zlen, zlen)
    for side in (-1, 1):  # kidneys
        organs.append(((side * rng.uniform(50, 70), rng.uniform(30, 50), kz),
                       (rng.uniform(18, 25), rng.uniform(24, 32), rng.uniform(20, 40)),
                       rng.uniform(25, 40)))
    return organs, (bw, bh)


def random_lesion(rng, body, zc):
    bw, bh = body
    # Anywhere well inside the body (it may sit in the liver, a lung or next to the spine).
    c = (rng.uniform(-0.6, 0.6) * bw, rng.uniform(-0.6, 0.5) * bh, zc)
    r = (rng.uniform(10, 30), rng.uniform(10, 30), rng.uniform(10, 30))
    return c, r, rng.uniform(90, 160)


def render(organs, lesion, xs, ys, zs, rng, sigma):
    """HU volume (len(zs), len(ys), len(xs)) and the lesion mask (uint8) at the given mm grid."""
    z, y, x = np.meshgrid(zs, ys, xs, indexing="ij")
    hu = np.full(x.shape, -1000.0, dtype=np.float64)
    for c, r, v in organs:
        hu[_ellipsoid(x, y, z, c, r)] = v  # later organs sit inside earlier ones
    mask = np.zeros(x.shape, dtype=np.uint8)
    if lesion is not None:
        c, r, v = lesion
        inside = _ellipsoid(x, y, z, c, r)
        hu[inside] = v
        mask[inside] = 1
    hu += rng.normal(0.0, sigma, size=hu.shape)
    return np.clip(np.rint(hu), -1024, 3071), mask


def training_slice(rng, size):
    """One 2-D slice (size x size pixels) and its mask: a random pixel spacing (0.6-1.6 mm, so
    512-pixel series of `agora dicom synth` and 256-pixel test studies look alike to the model)
    and a random window into the body; one slice in four has no lesion."""
    ps = rng.uniform(1.0, 1.6)
    organs, body = random_anatomy(rng, 60.0)
    z = rng.uniform(-30, 30)
    lesion = None
    if rng.uniform() < 0.75:
        lesion = random_lesion(rng, body, z + rng.uniform(-20, 20))
    cx = rng.uniform(-body[0], body[0]) * 0.7
    cy = rng.uniform(-body[1], body[1]) * 0.7
    if lesion is not None and rng.uniform() < 0.7:  # most windows show the lesion
        cx, cy = lesion[0][0] + rng.uniform(-40, 40), lesion[0][1] + rng.uniform(-40, 40)
    xs = cx + ps * (np.arange(size) - size / 2)
    ys = cy + ps * (np.arange(size) - size / 2)
    hu, mask = render(organs, lesion, xs, ys, np.array([z]), rng, rng.uniform(6, 20))
    return hu[0], mask[0]


def study(rng, rows, cols, slices, ps, thick):
    """A 3-D test study: HU volume (slices, rows, cols), truth mask, and its geometry."""
    zlen = thick * (slices - 1)
    organs, body = random_anatomy(rng, zlen)
    lesion = random_lesion(rng, body, rng.uniform(-zlen / 4, zlen / 4))
    xs = ps * (np.arange(cols) - (cols - 1) / 2)
    ys = ps * (np.arange(rows) - (rows - 1) / 2)
    zs = -zlen / 2 + thick * np.arange(slices)
    hu, mask = render(organs, lesion, xs, ys, zs, rng, rng.uniform(6, 20))
    return hu, mask, (xs[0], ys[0], zs)
