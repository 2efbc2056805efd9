"""Synthetic Sentinel-2-like image series, and the cube format sciflow's remote-sensing tools read.

The cube format
---------------
An ``xarray.Dataset`` with dimensions (time, band, y, x), the layout of openEO cubes and of
stackstac's DataArray; odc-stac's one variable per band, stackstac's DataArray and a
Scene Classification Layer are read into it as :mod:`sciflow.datasets.sentinel_layouts`
documents (band names, digital numbers, SCL classes):

=====================  ========================  ===============================================
variable               dims                      meaning
=====================  ========================  ===============================================
``reflectance``        (time, band, y, x)        surface reflectance (0-1) as observed, clouds
                                                 included; NaN where nothing was acquired
``cloud``  (optional)  (time, y, x), bool        cloud or cloud-shadow flag (e.g. from SCL or
                                                 s2cloudless); absent: every pixel is clear
``valid``  (optional)  (time, y, x), bool        data were acquired; absent: reflectance finite
``sar``    (optional)  (time, polarization, y, x) radar backscatter in dB (Sentinel-1 VV, VH)
``landcover`` (opt.)   (time, y, x), int         class labels; CF ``flag_values`` /
                                                 ``flag_meanings`` attributes name the classes
``clear_reflectance``  (time, band, y, x)        the cloud-free truth (synthetic data and
  (optional)                                     evaluation only)
=====================  ========================  ===============================================

Coordinates: ``time`` (datetime64, strictly increasing), ``band`` (names such as "B02"),
``polarization`` (names), ``y`` and ``x`` (map coordinates); :func:`validate_cube` adds ``doy``
(day of year). Integer reflectance is read as digital numbers / 10,000 (the Sentinel-2 L2A
scale) unless the variable carries CF ``scale_factor`` / ``add_offset``. A coordinate reference
system is a CF grid mapping, stored either way users have it: rioxarray's scalar coordinate
``spatial_ref`` (attributes ``crs_wkt`` / ``spatial_ref`` and ``GeoTransform``) or a CF
grid-mapping data variable (e.g. ``crs`` with ``grid_mapping_name``, ``crs_wkt``, ...), named
by each variable's ``grid_mapping`` attribute (or encoding); :func:`grid_mappings` finds them.
sciflow carries them through to its outputs unchanged, the way they were stored; it needs
neither rioxarray nor pyproj. Cubes are read and written as netCDF (``.nc``) or zarr (``.zarr``);
:func:`load_cube` with ``chunks`` returns a dask-backed cube that is never loaded whole.

The generator
-------------
:func:`generate_cube` draws a series over a real spatial template when one ships inside an
installed package: spyndex's ``data/S2_10m.json``, a 4 x 300 x 300 Sentinel-2 10 m scene (bands
B02, B03, B04, B08; reflectance x 10,000) of forest, fields and pasture. From it come the
land-cover map (NDVI / brightness thresholds, smoothed), parcels (a Voronoi partition
intersected with the classes) and per-pixel texture (the pixel's reflectance over its class
median). Without spyndex a documented procedural template is used (smooth random fields
thresholded into classes, textured with smooth noise); ``TemplateScene.source`` says which.

Over the template each series gets:

* irregular dates: ``n_dates`` distinct 5-day revisit slots of one year, drawn at random;
* phenology: every (parcel, class) follows a double-logistic vegetation curve
  g(d) = lo + (hi - lo) [s((d - sos) / r1) - s((d - eos) / r2)], s the logistic function, with
  class priors (crops: late, short, strong; grass: long, moderate; forest: high, mild; bare
  soil and water: none) and per-parcel and per-year jitter; reflectance
  = texture * (soil + (vegetation - soil) * g) per band, plus per-date illumination and noise;
* clouds: per date a cover fraction from a Beta distribution of mean ``cloud_cover`` (many
  clear and many overcast dates, as in Sentinel-2 archives), a thresholded smooth random field
  (``cloud_scale`` pixels) gives opaque cores and semi-transparent edges, blended towards a
  white cloud spectrum; shadows are the cloud field shifted along one sun direction per
  series, darkening the surface. ``cloud`` flags both;
* a Sentinel-1-like signal: VV and VH backscatter (dB) from class-specific levels plus a term
  linear in the vegetation curve, a per-date soil-moisture offset and multiplicative speckle
  (gamma, ``sar_looks`` looks) -- correlated with vegetation, blind to clouds;
* land-cover changes: on average ``change_rate`` events per 32 x 32 pixels, each turning one
  parcel into another class (deforestation, cropland expansion, abandonment, ...) from a random
  date on; ``landcover`` holds the per-date labels.

Spatial hold-out: ``region="train"`` draws windows from template columns 0-199, ``"test"`` from
columns 216-299; ``"all"`` anywhere. Windows get a random flip / rotation; scenes larger than
the template use its mirrored mosaic.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import xarray as xr

__all__ = [
    "S2_BANDS",
    "SAR_POLARIZATIONS",
    "LANDCOVER_CLASSES",
    "CubeError",
    "TemplateScene",
    "load_template",
    "SentinelSeriesSpec",
    "generate_cube",
    "generate_cubes",
    "validate_cube",
    "load_cube",
    "save_cube",
    "cube_crs",
    "write_crs",
    "grid_mappings",
    "class_names",
    "class_codes",
]

S2_BANDS: tuple[str, ...] = ("B02", "B03", "B04", "B08")
SAR_POLARIZATIONS: tuple[str, ...] = ("VV", "VH")
LANDCOVER_CLASSES: tuple[str, ...] = ("water", "forest", "cropland", "grassland", "bare")
PIXEL_SIZE = 10.0  # metres, Sentinel-2 10 m bands
TRAIN_COLUMNS, TEST_COLUMNS = (0, 200), (216, 300)


class CubeError(ValueError):
    """A cube does not follow the format this module documents (the message says what and how)."""


# ----------------------------------------------------------------------------- template


@dataclass(frozen=True)
class TemplateScene:
    """A single-date scene the generator builds series on.

    reflectance (4, H, W) float32 in B02, B03, B04, B08 order; landcover (H, W) int class index
    into :data:`LANDCOVER_CLASSES`; source: where the scene came from.
    """

    reflectance: np.ndarray
    landcover: np.ndarray
    source: str


_TEMPLATE_CACHE: dict[str, TemplateScene] = {}


def _smooth_field(shape: tuple[int, int], scale: float, rng: np.random.Generator) -> np.ndarray:
    """A zero-mean, unit-variance Gaussian random field with correlation length ~ ``scale`` px.

    White noise filtered in Fourier space by exp(-(k scale)^2 / 2) (periodic boundaries).
    """
    h, w = shape
    noise = rng.standard_normal((h, w))
    ky = np.fft.fftfreq(h)[:, None]
    kx = np.fft.fftfreq(w)[None, :]
    k2 = (2 * np.pi) ** 2 * (kx**2 + ky**2)
    f = np.real(np.fft.ifft2(np.fft.fft2(noise) * np.exp(-0.5 * k2 * scale**2)))
    f -= f.mean()
    return f / max(float(f.std()), 1e-12)


def _mode_filter(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """3 x 3 majority filter (removes isolated pixels from a thresholded class map)."""
    from scipy.ndimage import uniform_filter

    votes = np.stack([uniform_filter((labels == k).astype(np.float32), size=3, mode="nearest")
                      for k in range(n_classes)])
    return votes.argmax(axis=0).astype(np.int64)


def _classify(refl: np.ndarray) -> np.ndarray:
    """Land cover of a 4-band scene from NDVI, NIR and visible brightness thresholds."""
    blue, green, red, nir = refl
    ndvi = (nir - red) / np.maximum(nir + red, 1e-6)
    visible = (blue + green + red) / 3
    water = (ndvi < 0.1) & (nir < 0.15)
    bare = ~water & (ndvi < 0.22) & (visible > 0.09)
    crop = ~water & ~bare & (ndvi < 0.42)
    forest = ~water & ~bare & ~crop & (ndvi > 0.68) & (red < 0.045)
    labels = np.full(ndvi.shape, LANDCOVER_CLASSES.index("grassland"), dtype=np.int64)
    for name, m in (("water", water), ("bare", bare), ("cropland", crop), ("forest", forest)):
        labels[m] = LANDCOVER_CLASSES.index(name)
    return _mode_filter(labels, len(LANDCOVER_CLASSES))


def _procedural_template(size: int = 300, seed: int = 20_240) -> TemplateScene:
    """A stand-in scene when spyndex is not installed: thresholded smooth fields as classes."""
    rng = np.random.default_rng(seed)
    cover = _smooth_field((size, size), 18.0, rng)
    wet = _smooth_field((size, size), 30.0, rng)
    labels = np.full((size, size), LANDCOVER_CLASSES.index("grassland"), dtype=np.int64)
    labels[cover > 0.5] = LANDCOVER_CLASSES.index("forest")
    labels[cover < -0.3] = LANDCOVER_CLASSES.index("cropland")
    labels[(cover < -0.3) & (_smooth_field((size, size), 6.0, rng) > 1.2)] = \
        LANDCOVER_CLASSES.index("bare")
    labels[wet > 2.3] = LANDCOVER_CLASSES.index("water")
    refl = np.empty((4, size, size), dtype=np.float32)
    texture = 1 + 0.12 * _smooth_field((size, size), 2.0, rng)
    for k, name in enumerate(LANDCOVER_CLASSES):
        soil, veg, (lo, hi) = _SPECTRA[name][0], _SPECTRA[name][1], _PHENOLOGY[name][:2]
        spec = soil + (veg - soil) * 0.5 * (lo + hi)
        refl[:, labels == k] = spec[:, None]
    refl *= texture[None].astype(np.float32)
    return TemplateScene(reflectance=refl, landcover=labels,
                         source="procedural template (spyndex not installed)")


def load_template(source: Literal["auto", "spyndex", "procedural"] = "auto") -> TemplateScene:
    """The generator's spatial template.

    ``"spyndex"``: the real Sentinel-2 scene in spyndex's ``data/S2_10m.json`` (read as a
    package resource; spyndex itself is not imported). ``"procedural"``: the documented
    synthetic stand-in. ``"auto"``: spyndex when installed, else procedural.
    """
    if source not in ("auto", "spyndex", "procedural"):
        raise ValueError(f"template source must be 'auto', 'spyndex' or 'procedural', got {source!r}")
    if source in _TEMPLATE_CACHE:
        return _TEMPLATE_CACHE[source]
    scene: TemplateScene | None = None
    if source in ("auto", "spyndex"):
        try:
            import importlib.resources as resources

            text = (resources.files("spyndex") / "data" / "S2_10m.json").read_text()
            refl = np.asarray(json.loads(text), dtype=np.float32) / 10_000.0
            scene = TemplateScene(reflectance=refl, landcover=_classify(refl),
                                  source="spyndex data/S2_10m.json (real Sentinel-2 10 m scene, "
                                         "bands B02 B03 B04 B08, 300 x 300 px)")
        except (ModuleNotFoundError, FileNotFoundError) as err:
            if source == "spyndex":
                raise FileNotFoundError("the spyndex template needs the spyndex package "
                                        "(pip install spyndex)") from err
    if scene is None:
        scene = _procedural_template()
    _TEMPLATE_CACHE[source] = scene
    return scene


# ----------------------------------------------------------------------------- physics priors

# (soil spectrum, green-vegetation spectrum) per class, B02 B03 B04 B08 surface reflectance
_SPECTRA: dict[str, tuple[np.ndarray, np.ndarray]] = {
    name: (np.asarray(s, dtype=np.float32), np.asarray(v, dtype=np.float32))
    for name, s, v in (
        ("water", (0.032, 0.048, 0.035, 0.029), (0.032, 0.048, 0.035, 0.029)),
        ("forest", (0.045, 0.065, 0.070, 0.200), (0.022, 0.042, 0.022, 0.300)),
        ("cropland", (0.065, 0.090, 0.125, 0.210), (0.025, 0.070, 0.030, 0.420)),
        ("grassland", (0.055, 0.075, 0.090, 0.200), (0.030, 0.060, 0.040, 0.330)),
        ("bare", (0.070, 0.096, 0.140, 0.210), (0.070, 0.096, 0.140, 0.210)),
    )
}
# vegetation curve priors: lo, hi, sos (mean, sd), season length (mean, sd), rise/fall rate (days)
_PHENOLOGY: dict[str, tuple[float, float, tuple[float, float], tuple[float, float], float]] = {
    "water": (0.0, 0.0, (0.0, 0.0), (0.0, 0.0), 10.0),
    "forest": (0.62, 0.95, (105.0, 12.0), (190.0, 15.0), 18.0),
    "cropland": (0.04, 0.92, (135.0, 28.0), (95.0, 18.0), 8.0),
    "grassland": (0.28, 0.72, (85.0, 15.0), (180.0, 25.0), 20.0),
    "bare": (0.0, 0.0, (0.0, 0.0), (0.0, 0.0), 10.0),
}
# SAR: (VV at g = 0, VV slope in g, VH at g = 0, VH slope in g), dB
_SAR: dict[str, tuple[float, float, float, float]] = {
    "water": (-21.0, 0.0, -28.0, 0.0),
    "forest": (-9.5, 3.0, -17.0, 5.0),
    "cropland": (-12.5, 4.0, -21.0, 8.0),
    "grassland": (-12.0, 3.0, -20.0, 6.0),
    "bare": (-11.5, 0.0, -19.5, 0.0),
}
# land-cover change: from -> possible new classes
_TRANSITIONS: dict[str, tuple[str, ...]] = {
    "forest": ("cropland", "grassland", "bare"),
    "cropland": ("bare", "grassland"),
    "grassland": ("cropland", "bare"),
    "bare": ("cropland",),
}
_CLOUD_SPECTRUM = np.asarray((0.42, 0.41, 0.42, 0.45), dtype=np.float32)


def _double_logistic(doy: np.ndarray, lo: np.ndarray, hi: np.ndarray, sos: np.ndarray,
                     eos: np.ndarray, rate: np.ndarray) -> np.ndarray:
    """g(d) = lo + (hi - lo) [s((d - sos) / r) - s((d - eos) / r)], s(z) = 1 / (1 + e^-z)."""
    def s(z: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-np.clip(z, -40, 40)))

    return lo + (hi - lo) * (s((doy - sos) / rate) - s((doy - eos) / rate))


# ----------------------------------------------------------------------------- generator


@dataclass(frozen=True, kw_only=True)
class SentinelSeriesSpec:
    """What one synthetic series looks like (see the module docstring for the model).

    size: pixels per side (10 m pixels). n_dates: acquisitions in the year. cloud_cover: mean
    per-date cloud fraction in [0, 1). cloud_scale: correlation length of the cloud field, px.
    change_rate: expected land-cover change events per 32 x 32 px. sar: add the Sentinel-1-like
    signal. sar_looks: equivalent number of looks of the speckle. region: template columns to
    draw from ("train", "test", "all"). template: "auto", "spyndex" or "procedural".
    parcel_size: mean Voronoi parcel side, px. crs: optional CRS string stored rioxarray-style.
    """

    size: int = 32
    n_dates: int = 10
    bands: tuple[str, ...] = S2_BANDS
    cloud_cover: float = 0.4
    cloud_scale: float = 5.0
    change_rate: float = 0.5
    sar: bool = True
    sar_looks: float = 6.0
    region: Literal["train", "test", "all"] = "train"
    template: Literal["auto", "spyndex", "procedural"] = "auto"
    parcel_size: float = 14.0
    year: int | None = None
    crs: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.size, int) or self.size < 4:
            raise ValueError(f"size must be an integer >= 4 pixels, got {self.size!r}")
        if not isinstance(self.n_dates, int) or not 2 <= self.n_dates <= 73:
            raise ValueError(f"n_dates must be an integer in [2, 73] (5-day revisits in a year), "
                             f"got {self.n_dates!r}")
        if tuple(self.bands) != S2_BANDS[: len(self.bands)] or not self.bands:
            raise ValueError(f"bands must be a leading subset of {S2_BANDS} (the template's "
                             f"bands), got {self.bands!r}")
        if not 0.0 <= self.cloud_cover < 1.0:
            raise ValueError(f"cloud_cover must lie in [0, 1), got {self.cloud_cover}")
        if self.cloud_scale <= 0 or self.parcel_size <= 1 or self.sar_looks <= 0:
            raise ValueError("cloud_scale, sar_looks must be > 0 and parcel_size > 1, got "
                             f"{self.cloud_scale}, {self.sar_looks}, {self.parcel_size}")
        if self.change_rate < 0:
            raise ValueError(f"change_rate must be >= 0, got {self.change_rate}")
        if self.region not in ("train", "test", "all"):
            raise ValueError(f"region must be 'train', 'test' or 'all', got {self.region!r}")


def _window(scene: TemplateScene, size: int, region: str,
            rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A random size x size window of the template region, randomly flipped / rotated."""
    refl, labels = scene.reflectance, scene.landcover
    width = refl.shape[2]
    lo, hi = {"train": TRAIN_COLUMNS, "test": TEST_COLUMNS, "all": (0, width)}[region]
    hi = min(hi, width)
    refl, labels = refl[:, :, lo:hi], labels[:, lo:hi]
    reps_y = math.ceil(size / refl.shape[1])
    reps_x = math.ceil(size / refl.shape[2])
    if reps_y > 1 or reps_x > 1:  # a mirrored mosaic for scenes larger than the region
        def mosaic(a: np.ndarray) -> np.ndarray:
            rows = [a if i % 2 == 0 else np.flip(a, -2) for i in range(reps_y)]
            col = np.concatenate(rows, axis=-2)
            cols = [col if j % 2 == 0 else np.flip(col, -1) for j in range(reps_x)]
            return np.concatenate(cols, axis=-1)
        refl, labels = mosaic(refl), mosaic(labels)
    y0 = int(rng.integers(0, refl.shape[1] - size + 1))
    x0 = int(rng.integers(0, refl.shape[2] - size + 1))
    refl = refl[:, y0:y0 + size, x0:x0 + size]
    labels = labels[y0:y0 + size, x0:x0 + size]
    k = int(rng.integers(0, 4))
    refl, labels = np.rot90(refl, k, axes=(1, 2)), np.rot90(labels, k)
    if rng.random() < 0.5:
        refl, labels = refl[:, :, ::-1], labels[:, ::-1]
    return np.ascontiguousarray(refl), np.ascontiguousarray(labels)


def _parcels(labels: np.ndarray, parcel_size: float, rng: np.random.Generator) -> np.ndarray:
    """Parcel ids: a random Voronoi partition intersected with the land-cover classes."""
    from scipy.spatial import cKDTree

    h, w = labels.shape
    n_seeds = max(1, int(round(h * w / parcel_size**2)))
    seeds = rng.uniform(0, [h, w], size=(n_seeds, 2))
    yy, xx = np.meshgrid(np.arange(h) + 0.5, np.arange(w) + 0.5, indexing="ij")
    _, cell = cKDTree(seeds).query(np.stack([yy.ravel(), xx.ravel()], axis=1))
    cell = np.asarray(cell, dtype=np.int64).reshape(h, w)
    return cell * len(LANDCOVER_CLASSES) + labels


def _dates(n: int, year: int, rng: np.random.Generator) -> np.ndarray:
    """n distinct 5-day revisit slots of ``year``, sorted (datetime64[ns])."""
    offset = int(rng.integers(0, 5))
    slots = np.sort(rng.choice(73, size=n, replace=False))
    start = np.datetime64(f"{year}-01-01", "D")
    return (start + (offset + 5 * slots).astype("timedelta64[D]")).astype("datetime64[ns]")


def _day_of_year(times: np.ndarray) -> np.ndarray:
    t = np.asarray(times, dtype="datetime64[D]")
    return (t - t.astype("datetime64[Y]")).astype(np.int64) + 1


def generate_cube(spec: SentinelSeriesSpec | None = None, *, seed: int = 0) -> xr.Dataset:
    """Draw one synthetic series in the cube format (with ``clear_reflectance`` and ``landcover``).

    Deterministic for a (spec, seed) pair. Shapes: reflectance (n_dates, bands, size, size).

    Example
    -------
    >>> cube = generate_cube(SentinelSeriesSpec(size=32, n_dates=8), seed=1)
    >>> cube.reflectance.dims
    ('time', 'band', 'y', 'x')
    """
    spec = spec if spec is not None else SentinelSeriesSpec()
    rng = np.random.default_rng(seed)
    scene = load_template(spec.template)
    size, n_t, k_cls = spec.size, spec.n_dates, len(LANDCOVER_CLASSES)
    tpl_refl, tpl_labels = _window(scene, size, spec.region, rng)
    # texture: reflectance over the class median of the whole template
    texture = np.ones((4, size, size), dtype=np.float32)
    for k in range(k_cls):
        m = tpl_labels == k
        if m.any():
            med = np.median(scene.reflectance[:, scene.landcover == k], axis=1)
            texture[:, m] = tpl_refl[:, m] / np.maximum(med[:, None], 1e-4)
    texture = np.clip(texture, 0.6, 1.6)

    year = spec.year if spec.year is not None else int(rng.integers(2018, 2025))
    times = _dates(n_t, year, rng)
    doy = _day_of_year(times).astype(np.float64)

    # land-cover per date, with change events on whole parcels
    parcel = _parcels(tpl_labels, spec.parcel_size, rng)
    labels = np.broadcast_to(tpl_labels, (n_t, size, size)).copy()
    n_events = int(rng.poisson(spec.change_rate * size * size / 1024.0))
    ids, counts = np.unique(parcel, return_counts=True)
    for _ in range(n_events):
        ok = [(i, c) for i, c in zip(ids, counts)
              if c >= 16 and LANDCOVER_CLASSES[i % k_cls] in _TRANSITIONS]
        if not ok:
            break
        pid = ok[int(rng.integers(len(ok)))][0]
        old = LANDCOVER_CLASSES[pid % k_cls]
        new = _TRANSITIONS[old][int(rng.integers(len(_TRANSITIONS[old])))]
        when = int(rng.integers(1, n_t))
        labels[when:, parcel == pid] = LANDCOVER_CLASSES.index(new)

    # phenology parameters per (parcel, class); a per-series shift stands for the year's weather
    n_parcels = int(parcel.max()) + 1
    shift = rng.normal(0.0, 8.0)
    lo = np.zeros((n_parcels, k_cls))
    hi, sos, eos, rate = (np.zeros_like(lo) for _ in range(4))
    for k, name in enumerate(LANDCOVER_CLASSES):
        plo, phi, (s_mu, s_sd), (l_mu, l_sd), r = _PHENOLOGY[name]
        lo[:, k] = np.clip(plo + rng.normal(0, 0.04, n_parcels), 0, 1) if phi else 0.0
        hi[:, k] = np.clip(phi + rng.normal(0, 0.04, n_parcels), 0, 1) if phi else 0.0
        sos[:, k] = s_mu + shift + rng.normal(0, s_sd, n_parcels) if phi else 0.0
        eos[:, k] = sos[:, k] + np.maximum(l_mu + rng.normal(0, l_sd, n_parcels), 30.0)
        rate[:, k] = r * rng.uniform(0.8, 1.25, n_parcels)
    flat = parcel.reshape(-1)
    g = np.empty((n_t, size * size))
    for t in range(n_t):
        cls = labels[t].reshape(-1)
        g[t] = _double_logistic(doy[t], lo[flat, cls], hi[flat, cls], sos[flat, cls],
                                eos[flat, cls], rate[flat, cls])
    g = g.reshape(n_t, size, size).astype(np.float32)

    soil = np.stack([_SPECTRA[n][0] for n in LANDCOVER_CLASSES])  # (K, 4)
    veg = np.stack([_SPECTRA[n][1] for n in LANDCOVER_CLASSES])
    soil_px = np.moveaxis(soil[labels], -1, 1)  # (T, 4, H, W)
    veg_px = np.moveaxis(veg[labels], -1, 1)
    illumination = rng.normal(1.0, 0.02, size=(n_t, 4, 1, 1)).astype(np.float32)
    truth = texture[None] * (soil_px + (veg_px - soil_px) * g[:, None]) * illumination
    truth = truth + rng.normal(0.0, 0.003, truth.shape).astype(np.float32)
    truth = np.clip(truth, 0.0, 1.0).astype(np.float32)

    # clouds and shadows
    a_, b_ = 1.2 * spec.cloud_cover + 1e-3, 1.2 * (1 - spec.cloud_cover) + 1e-3
    cover = rng.beta(a_, b_, size=n_t)
    cover[(cover < 0.03) | (spec.cloud_cover == 0)] = 0.0
    angle = rng.uniform(0, 2 * np.pi)
    length = rng.uniform(2.0, 5.0)
    dy, dx = int(round(length * math.sin(angle))), int(round(length * math.cos(angle)))
    observed = truth.copy()
    cloud = np.zeros((n_t, size, size), dtype=bool)
    for t in range(n_t):
        if cover[t] <= 0:
            continue
        f = _smooth_field((size, size), spec.cloud_scale, rng)
        q = np.quantile(f, 1 - cover[t]) if cover[t] < 1 else f.min() - 1
        alpha = np.clip((f - q) / 0.6, 0.0, 1.0) ** 0.5
        alpha[f <= q] = 0.0
        shadow = 0.55 * np.roll(alpha, (dy, dx), axis=(0, 1)) * (alpha <= 0)
        shadow[shadow < 0.05] = 0.0  # faint penumbra: neither darkened nor flagged
        brightness = rng.uniform(0.85, 1.15)
        observed[t] = (observed[t] * (1 - shadow)[None] * (1 - alpha)[None]
                       + alpha[None] * brightness * _CLOUD_SPECTRUM[:, None, None])
        observed[t] += rng.normal(0.0, 0.01, observed[t].shape).astype(np.float32) * alpha
        cloud[t] = (alpha > 0) | (shadow > 0)
    observed = np.clip(observed, 0.0, 1.0).astype(np.float32)

    nb = len(spec.bands)
    coords = {
        "time": times,
        "band": list(spec.bands),
        "y": ("y", 5_000_000.0 - PIXEL_SIZE * (np.arange(size) + 0.5),
              {"standard_name": "projection_y_coordinate", "long_name": "northing",
               "units": "m"}),
        "x": ("x", 500_000.0 + PIXEL_SIZE * (np.arange(size) + 0.5),
              {"standard_name": "projection_x_coordinate", "long_name": "easting",
               "units": "m"}),
    }
    data = {
        "reflectance": (("time", "band", "y", "x"), observed[:, :nb],
                        {"standard_name": "surface_bidirectional_reflectance",
                         "long_name": "surface reflectance", "units": "1"}),
        "clear_reflectance": (("time", "band", "y", "x"), truth[:, :nb],
                              {"standard_name": "surface_bidirectional_reflectance",
                               "long_name": "cloud-free surface reflectance (truth)",
                               "units": "1"}),
        "cloud": (("time", "y", "x"), cloud, {"long_name": "cloud or cloud-shadow flag"}),
        "valid": (("time", "y", "x"), np.ones_like(cloud), {"long_name": "data acquired"}),
        "landcover": (("time", "y", "x"), labels.astype(np.int8),
                      {"long_name": "land cover class", "flag_values": np.arange(k_cls, dtype=np.int8),
                       "flag_meanings": " ".join(LANDCOVER_CLASSES)}),
    }
    if spec.sar:
        sar = np.empty((n_t, 2, size, size), dtype=np.float32)
        pars = np.asarray([_SAR[n] for n in LANDCOVER_CLASSES], dtype=np.float32)  # (K, 4)
        p = pars[labels]  # (T, H, W, 4)
        moisture = rng.normal(0.0, 0.8, size=(n_t, 1, 1)).astype(np.float32)
        vv = p[..., 0] + p[..., 1] * g + moisture
        vh = p[..., 2] + p[..., 3] * g + 0.5 * moisture
        for i, level in enumerate((vv, vh)):
            speckle = rng.gamma(spec.sar_looks, 1.0 / spec.sar_looks, size=level.shape)
            sar[:, i] = level + 10.0 * np.log10(speckle).astype(np.float32)
        coords["polarization"] = list(SAR_POLARIZATIONS)
        data["sar"] = (("time", "polarization", "y", "x"), sar,
                       {"long_name": "Sentinel-1-like backscatter", "units": "dB"})
    ds = xr.Dataset(data, coords=coords)
    ds.attrs.update({
        "title": "synthetic Sentinel-2-like series (sciflow.datasets.sentinel)",
        "Conventions": "CF-1.8",
        "institution": "sciflow (synthetic data, no institution)",
        "template": scene.source,
        "generator": json.dumps({**asdict(spec), "seed": seed, "year": year}),
    })
    if spec.crs is not None:
        ds = write_crs(ds, spec.crs)
    return validate_cube(ds)


def generate_cubes(spec: SentinelSeriesSpec | None = None, n: int = 16, *,
                   seed: int = 0) -> list[xr.Dataset]:
    """``n`` independent series (seeds seed * 100_003 + i, so sets with different seeds differ)."""
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    return [generate_cube(spec, seed=seed * 100_003 + i) for i in range(n)]


# ----------------------------------------------------------------------------- CRS


def write_crs(ds: xr.Dataset, crs: str, transform: Sequence[float] | None = None) -> xr.Dataset:
    """Attach a CRS the way rioxarray does: a ``spatial_ref`` coordinate plus ``grid_mapping``.

    ``crs`` is any string a GIS reads (WKT, "EPSG:32633"); WKT goes to ``crs_wkt``, anything
    else to ``spatial_ref``. ``transform`` (GDAL order: x0, dx, 0, y0, 0, dy) defaults to the
    one implied by regularly spaced x / y pixel-centre coordinates.
    """
    if not isinstance(crs, str) or not crs.strip():
        raise TypeError(f"crs must be a non-empty string (WKT or 'EPSG:XXXX'), got {crs!r}")
    attrs: dict[str, str] = {}
    if crs.lstrip().upper().startswith(("GEOGCS", "PROJCS", "PROJCRS", "GEOGCRS", "COMPOUNDCRS")):
        attrs["crs_wkt"] = crs
    attrs["spatial_ref"] = crs
    if transform is None and ds.sizes.get("x", 0) > 1 and ds.sizes.get("y", 0) > 1:
        x, y = ds["x"].values, ds["y"].values
        dx, dy = float(x[1] - x[0]), float(y[1] - y[0])
        transform = (float(x[0]) - dx / 2, dx, 0.0, float(y[0]) - dy / 2, 0.0, dy)
    if transform is not None:
        attrs["GeoTransform"] = " ".join(repr(float(v)) for v in transform)
    out = ds.assign_coords(spatial_ref=xr.DataArray(np.int64(0), attrs=attrs))
    for name in out.data_vars:
        out[name].attrs["grid_mapping"] = "spatial_ref"
    return out


def grid_mappings(ds: xr.Dataset) -> tuple[str, ...]:
    """The CF grid-mapping variables of a cube, in order of first use: the names in the
    ``grid_mapping`` attribute (or encoding, as rioxarray and ``decode_coords="all"`` keep it)
    of its variables that exist in the cube, plus a ``spatial_ref`` coordinate (rioxarray).
    Each may be a coordinate or a data variable; CF's extended form ``"crs: x y"`` is read."""
    found: list[str] = []
    for var in ds.variables.values():
        text = var.attrs.get("grid_mapping") or var.encoding.get("grid_mapping")
        if not text:
            continue
        for word in str(text).replace(":", " ").split():
            if word in ds.variables and word not in ds.dims and word not in found:
                found.append(word)
    if "spatial_ref" in ds.variables and "spatial_ref" not in found:
        found.append("spatial_ref")
    return tuple(found)


def cube_crs(ds: xr.Dataset) -> str | None:
    """The CRS string of a cube (its CF grid mapping, stored as a coordinate or a data
    variable, or a ``crs`` attribute), or None."""
    names = grid_mappings(ds)
    for name in names:
        if name in ds.variables:
            a = ds[name].attrs
            for key in ("crs_wkt", "spatial_ref", "crs"):
                if key in a:
                    return str(a[key])
    crs = ds.attrs.get("crs")
    return None if crs is None else str(crs)


# ----------------------------------------------------------------------------- validation, I/O


_SPATIAL_ONLY = {"cloud": ("time", "y", "x"), "valid": ("time", "y", "x"),
                 "landcover": ("time", "y", "x")}


def _fix_dims(da: xr.DataArray, name: str, dims: tuple[str, ...]) -> xr.DataArray:
    missing = [d for d in dims if d not in da.dims]
    extra = [d for d in da.dims if d not in dims]
    if missing or extra:
        hint = ""
        if {"lat", "lon"} & set(da.dims) or {"latitude", "longitude"} & set(da.dims):
            hint = "; rename lat/lon to y/x (cube.rename(lat='y', lon='x'))"
        elif "bands" in da.dims:
            hint = "; rename 'bands' to 'band'"
        raise CubeError(f"{name} must have dims {dims}, got {da.dims} (missing {missing}, "
                        f"unexpected {extra}){hint}")
    return da.transpose(*dims)


def class_names(ds: xr.Dataset) -> tuple[str, ...] | None:
    """Class names of the cube's ``landcover`` variable (CF ``flag_meanings``), or None."""
    if "landcover" not in ds:
        return None
    meanings = ds["landcover"].attrs.get("flag_meanings")
    return tuple(str(meanings).split()) if meanings else None


def class_codes(ds: xr.Dataset) -> tuple[int, ...] | None:
    """The values that stand for each class of :func:`class_names` (CF ``flag_values``, e.g.
    ESA WorldCover's 10, 20, ...), or None when the cube does not say (then 0, 1, ...)."""
    if "landcover" not in ds or "flag_values" not in ds["landcover"].attrs:
        return None
    codes = tuple(int(v) for v in np.atleast_1d(ds["landcover"].attrs["flag_values"]))
    names = class_names(ds)
    if names is not None and len(names) != len(codes):
        raise CubeError(f"landcover has {len(codes)} flag_values {list(codes)} but "
                        f"{len(names)} flag_meanings {list(names)}; give one name per value")
    return codes


def validate_cube(cube: xr.Dataset | xr.DataArray, *, sort_time: bool = True) -> xr.Dataset:
    """Check a cube against the format above and return it in canonical form.

    Canonical: variables transposed to the documented dim order, masks boolean, integer
    reflectance scaled to 0-1, a ``doy`` coordinate. Other layouts are read first
    (:func:`sciflow.datasets.sentinel_layouts.to_cube_layout`): a DataArray (time, band, y, x)
    such as stackstac's as ``reflectance``, one (time, y, x) variable per band (odc-stac) stacked
    into it, an SCL band as the cloud / valid masks. Unsorted times are sorted (with a warning) when ``sort_time``, else
    refused; duplicated times are always refused (which acquisition is right is ambiguous).
    Lazy (dask) variables stay lazy.

    Raises
    ------
    CubeError
        Missing ``reflectance``, wrong dims, a non-datetime ``time``, duplicated times or band
        names, masks of the wrong shape.
    """
    from .sentinel_layouts import to_cube_layout

    if not isinstance(cube, (xr.Dataset, xr.DataArray)):
        raise TypeError(f"cube must be an xarray Dataset or DataArray, got {type(cube).__name__}")
    cube = to_cube_layout(cube)
    if "reflectance" not in cube:
        raise CubeError(f"the cube has no 'reflectance' variable and no band variables "
                        f"(variables: {list(cube.data_vars)}); name the optical (time, band, y, x) "
                        "array 'reflectance', or give one (time, y, x) variable per band named "
                        "by its Sentinel-2 id (B02, ...) or common name (blue, green, red, nir, "
                        "...), as odc-stac writes them")
    ds = cube.copy()
    ds["reflectance"] = _fix_dims(ds["reflectance"], "reflectance", ("time", "band", "y", "x"))
    for name, dims in _SPATIAL_ONLY.items():
        if name in ds:
            ds[name] = _fix_dims(ds[name], name, dims)
    for name in ("clear_reflectance",):
        if name in ds:
            ds[name] = _fix_dims(ds[name], name, ("time", "band", "y", "x"))
    if "sar" in ds:
        ds["sar"] = _fix_dims(ds["sar"], "sar", ("time", "polarization", "y", "x"))
    if "time" not in ds.coords or not np.issubdtype(ds["time"].dtype, np.datetime64):
        got = ds["time"].dtype if "time" in ds.coords else "no coordinate"
        raise CubeError(f"the time dimension needs a datetime64 coordinate, got {got}; e.g. "
                        "cube.assign_coords(time=pandas.to_datetime(dates))")
    times = ds["time"].values
    if ds.sizes["time"] < 1:
        raise CubeError("the cube has no dates (time dimension of length 0)")
    uniq, counts = np.unique(times, return_counts=True)
    if (counts > 1).any():
        dup = [str(np.datetime_as_string(u, unit="D")) for u in uniq[counts > 1]]
        raise CubeError(f"duplicated acquisition times {dup}: merge or drop them first (e.g. "
                        "cube.groupby('time').first() or cube.drop_duplicates('time'))")
    if (np.diff(times.astype("datetime64[ns]").astype(np.int64)) < 0).any():
        if not sort_time:
            raise CubeError("times are not increasing; sort the cube with cube.sortby('time')")
        warnings.warn("cube times were not increasing; sorted them (cube.sortby('time'))",
                      stacklevel=2)
        ds = ds.sortby("time")
    if "band" not in ds.coords:
        raise CubeError("the band dimension needs a coordinate of band names, e.g. "
                        "cube.assign_coords(band=['B02', 'B03', 'B04', 'B08'])")
    bands = [str(b) for b in ds["band"].values]
    if len(set(bands)) != len(bands):
        raise CubeError(f"band names must be unique, got {bands}")
    refl = ds["reflectance"]
    if np.issubdtype(refl.dtype, np.integer):
        warnings.warn("integer reflectance read as digital numbers / 10000 (Sentinel-2 L2A scale)",
                      stacklevel=2)
        ds["reflectance"] = (refl / 10_000.0).astype(np.float32)
    elif not np.issubdtype(refl.dtype, np.floating):
        raise CubeError(f"reflectance must be numeric, got dtype {refl.dtype}")
    for name in ("cloud", "valid"):
        if name in ds and ds[name].dtype != bool:
            ds[name] = ds[name] != 0
    if "sar" in ds and "polarization" not in ds.coords:
        raise CubeError("the sar variable needs a 'polarization' coordinate, e.g. ['VV', 'VH']")
    ds = ds.assign_coords(doy=("time", _day_of_year(ds["time"].values)))
    return ds


def _engine(path: Path) -> Literal["netcdf", "zarr"]:
    suffix = path.suffix.lower()
    if suffix in (".nc", ".nc4", ".netcdf"):
        return "netcdf"
    if suffix == ".zarr":
        return "zarr"
    raise CubeError(f"cannot tell the format of {str(path)!r}: use a .nc (netCDF) or .zarr path")


def load_cube(path: str | Path, *, chunks: dict[str, int] | None = None,
              sort_time: bool = True) -> xr.Dataset:
    """Open a netCDF (.nc) or zarr (.zarr) cube and validate it (:func:`validate_cube`).

    ``chunks`` (e.g. ``{"y": 256, "x": 256}``) opens it lazily with dask, so a scene larger than
    memory is read block by block by the functions that consume it.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"cube {str(path)!r} does not exist")
    engine = _engine(path)
    if engine == "zarr":
        ds = xr.open_zarr(path, chunks=chunks, consolidated=None)
    else:
        ds = xr.open_dataset(path, chunks=chunks)
    return validate_cube(ds, sort_time=sort_time)


def save_cube(ds: xr.Dataset, path: str | Path) -> Path:
    """Write a cube as netCDF (.nc) or zarr (.zarr); dask-backed variables stream block by block.

    The derived ``doy`` coordinate is dropped (it is recomputed on load).
    """
    path = Path(path)
    engine = _engine(path)
    out = ds.drop_vars("doy", errors="ignore")
    for name in out.variables:  # let the backend pick encodings fresh
        out[name].encoding = {}
    path.parent.mkdir(parents=True, exist_ok=True)
    if engine == "zarr":
        # zarr format 2: its fixed-length string dtype (band names) is specified; v3's is not yet
        out.to_zarr(path, mode="w", zarr_format=2, consolidated=True)
    else:
        out.to_netcdf(path)
    return path

