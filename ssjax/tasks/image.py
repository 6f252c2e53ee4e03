"""Image-pattern tasks: a target raster that draws a picture, as in the SSBM benchmarks.

The SSBM recipe turns a dark-on-light image of H rows and W columns into a spike raster of H
neurons: column c is a time bin of width ``w = duration / W`` seconds and every dark pixel (row r,
column c) gives one spike of the neuron for row r at ``t0 + c * w`` plus a uniform jitter. With
``flip_rows=True`` (default) row r is neuron ``H - 1 - r``, so the top row is the highest id and a
raster plot with time to the right and neuron id upward shows the image upright.

Defaults were measured on the SSBM Auryn target (Figs. 6-7): ``auryn_logo_small.png`` (100 x 70,
1630 dark pixels) converted with duration 3.5 s gives exactly the 1630 spikes of ``target.ras``
with, in each of the 70 bins of 50 ms, the same neuron set (Jaccard 1.0 in every bin) once the
file is read with ``id_offset=1``: the SSBM script writes ids ``H - r``, i.e. 1-based and flipped,
like the Oxford target. Its jitter offsets lie in [0, w/3) (max 0.333 w, mean 0.166 w), so the
default jitter is a third of a bin; the Oxford target uses a full bin (``jitter=w``).

Reference: Zenke & Ganguli 2018, "SuperSpike", Neural Comput. 30(6):1514-1541, Figs. 6-7; SSBM
benchmark suite, github.com/fzenke/ssbm (Zenke 2017).

``task.kind: image`` (registered here, :mod:`ssjax.tasks.registry`) draws ``task.image`` (None:
:func:`default_image`) over one ``task.period``: ``task.n_out`` must equal the image's height. The
file is read once, when the config is validated.
"""

from __future__ import annotations

import dataclasses
import os
from typing import ClassVar

import jax
import numpy as np

from ssjax.params import Check, borrow, check_fields, param
from ssjax.pattern import EventPattern
from ssjax.tasks.raster import (
    SpikeEvents,
    events_to_bins,
    events_to_raster,
    frozen_poisson,
    frozen_poisson_events,
)
from ssjax.tasks.registry import TaskCommon, TaskError, TaskKind, register

__all__ = ["default_image", "image_task", "image_to_events", "load_image", "to_grayscale"]

# ITU-R BT.601 luma weights; they sum to 1, so a gray image replicated in R, G, B maps to itself.
_LUMA = np.array([0.299, 0.587, 0.114])


def to_grayscale(image) -> np.ndarray:
    """Grayscale [H, W] float64 in [0, 1] (0 black) from [H, W], [H, W, 3] or [H, W, 4] pixels.

    RGB becomes BT.601 luminance; RGBA is first composited over white, so transparent pixels
    count as background (light). Integer images are scaled by their dtype's maximum.
    """
    img = np.asarray(image)
    if np.issubdtype(img.dtype, np.integer):
        img = img / np.iinfo(img.dtype).max
    img = img.astype(np.float64)
    if img.ndim == 3 and img.shape[2] in (3, 4):
        rgb = img[..., :3] @ _LUMA
        img = rgb if img.shape[2] == 3 else rgb * img[..., 3] + (1.0 - img[..., 3])
    if img.ndim != 2 or img.size == 0:
        raise ValueError(f"image must be [H, W], [H, W, 3] or [H, W, 4], got shape {img.shape}")
    if not (np.all(np.isfinite(img)) and img.min() >= 0.0 and img.max() <= 1.0):
        raise ValueError("image values must be finite and in [0, 1]")
    return img


def load_image(path) -> np.ndarray:
    """Read an image file (PNG natively) as grayscale [H, W] float64 in [0, 1] (0 black).

    Raises:
      ValueError: naming the path, if the file is missing, unreadable or not an image.
    """
    import matplotlib.image  # deferred: matplotlib is only needed to read files

    path = os.fspath(path)
    try:
        pixels = matplotlib.image.imread(path)
    except (OSError, ValueError, SyntaxError) as exc:  # PIL reports bad files as OSError subclasses
        raise ValueError(f"cannot read image file {path}: {exc}") from exc
    try:
        return to_grayscale(pixels)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None


def default_image(height: int = 100, width: int = 70) -> np.ndarray:
    """The letters "SS" drawn with numpy (no fonts, no files): [height, width] float64, 0 or 1.

    Dark (0) strokes on a light (1) background; deterministic. Each S is two elliptic arcs, a top
    bowl open to the lower right and a bottom bowl open to the upper left, meeting in the middle.
    Dark pixels fill about 14% of the default 100 x 70 image (Auryn logo: 23%), between 0% (the
    margins and the gap between the letters) and at most 40% of the rows in any column, so the
    target rates resemble the Auryn task's.
    """
    if int(height) != height or int(width) != width or height < 8 or width < 8:
        raise ValueError(f"height and width must be integers >= 8, got {height!r}, {width!r}")
    height, width = int(height), int(width)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64) + 0.5  # pixel centres
    stroke = max(1.0, 0.035 * min(height, 1.4 * width))  # pixels; scales with the image
    rx, ry = 0.19 * width, 0.2 * height
    dark = np.zeros((height, width), dtype=bool)
    for xc in (0.27 * width, 0.73 * width):
        # (centre row, arc start, arc end) in degrees counter-clockwise from "east", y upward.
        for yc, lo, hi in ((0.3 * height, 30.0, 270.0), (0.7 * height, -150.0, 90.0)):
            dx, dy = x - xc, yc - y
            rho = np.hypot(dx / rx, dy / ry)
            # |rho - 1| / |grad rho| approximates the pixel distance to the ellipse, so the
            # stroke keeps one width although the ellipse is not a circle.
            grad = np.hypot(dx / rx**2, dy / ry**2) / np.maximum(rho, 1e-12)
            dist = np.abs(rho - 1.0) / np.maximum(grad, 1e-12)
            phi = np.degrees(np.arctan2(dy, dx))
            phi = np.where(phi < lo, phi + 360.0, phi)
            dark |= (dist <= stroke / 2) & (phi <= hi)
    return np.where(dark, 0.0, 1.0)


def image_to_events(
    image: np.ndarray,
    *,
    duration: float,
    key,
    threshold: float = 0.5,
    jitter: float | None = None,
    t0: float = 0.0,
    flip_rows: bool = True,
) -> SpikeEvents:
    """Target spikes that draw ``image``: one spike per dark pixel (SSBM recipe).

    Args:
      image: [H, W] grayscale in [0, 1], or [H, W, 3|4] (see to_grayscale).
      duration: seconds spanned by the W columns; column c is the bin [t0 + c w, t0 + (c+1) w),
        w = duration / W.
      key: jax.random key, the only source of randomness (one uniform draw per pixel, [H, W]).
      threshold: a pixel is dark, hence a spike, when its value is < threshold.
      jitter: seconds; a spike lies at t0 + c w + u, u uniform in [0, jitter). None means w / 3,
        as measured on the Auryn target. Must be in [0, w], so spikes stay in their bin.
      t0: seconds, start of column 0.
      flip_rows: True maps row r to neuron H - 1 - r (image upright with id upward); False to r.

    Returns:
      SpikeEvents with ids in [0, H), sorted by column then id. The ids and the count do not
      depend on the key; only the times within each bin do.
    """
    img = to_grayscale(image)
    H, W = img.shape
    if not duration > 0:
        raise ValueError(f"duration must be > 0 seconds, got {duration!r}")
    if not t0 >= 0:
        raise ValueError(f"t0 must be >= 0 seconds, got {t0!r}")
    width = duration / W
    jitter = width / 3.0 if jitter is None else float(jitter)
    if not 0.0 <= jitter <= width:
        raise ValueError(f"jitter must be in [0, {width!r}] s (one column bin), got {jitter!r}")
    # Draw for every pixel, not only the dark ones, so a pixel's jitter does not depend on the
    # rest of the image or on the threshold.
    u = np.asarray(jax.random.uniform(key, (H, W)), dtype=np.float64)  # [0, 1)
    rows, cols = np.nonzero(img < threshold)
    ids = H - 1 - rows if flip_rows else rows
    order = np.lexsort((ids, cols))
    rows, cols, ids = rows[order], cols[order], ids[order]
    times = t0 + cols * width + u[rows, cols] * jitter
    return SpikeEvents(times, ids)


def image_task(
    image, *, n_in: int, duration: float, dt: float, key, rate_hz: float = 5.0, **kw
) -> tuple[np.ndarray, np.ndarray]:
    """Frozen Poisson inputs and a target raster that draws ``image`` (SSBM Auryn/Oxford tasks).

    Args:
      image: array as for image_to_events, or a path read with load_image.
      n_in: number of input neurons.
      duration: seconds the image spans; the trial lasts t0 + duration (t0 from kw, default 0).
      dt: time step in seconds.
      key: jax.random key, split once: one half draws the inputs, the other the target jitter.
      rate_hz: input rate in Hz.
      kw: threshold, jitter, t0, flip_rows for image_to_events.

    Returns:
      (inputs [T, n_in] of 0/1, targets [T, H] of spike counts), float32,
      T = rint((t0 + duration) / dt). A target spike within dt/2 of the trial end is moved to the
      last step, since rounding would otherwise put it past the raster.
    """
    img = load_image(image) if isinstance(image, (str, os.PathLike)) else to_grayscale(image)
    key_in, key_out = jax.random.split(key)
    period = kw.get("t0", 0.0) + duration
    events = image_to_events(img, duration=duration, key=key_out, **kw)
    T = int(np.rint(period / dt))
    if T < 1:
        raise ValueError(f"trial of {period!r} s is shorter than half a step (dt={dt!r} s)")
    last = np.rint(events.times / dt) >= T
    times = np.where(last, (T - 1) * dt, events.times)
    targets = events_to_raster(SpikeEvents(times, events.ids), img.shape[0], dt, T * dt)
    inputs = np.asarray(frozen_poisson(key_in, n_in, rate_hz, T * dt, dt), dtype=np.float32)
    return inputs, targets.astype(np.float32)


@dataclasses.dataclass(frozen=True)
class ImageParams:
    """The ``task`` keys of ``task.kind: image``."""

    SCOPE: ClassVar[str] = "task"

    image: str | None = param(None, doc="PNG drawn by the target (None: default_image())")
    image_threshold: float = param(
        0.5,
        Check(lambda v, c: 0 < v <= 1, "> 0 and <= 1 (pixel values: 0 black, 1 white)"),
        doc="a pixel darker than this is a spike",
    )
    n_in: int = borrow(TaskCommon, "n_in")
    n_out: int = borrow(TaskCommon, "n_out")
    period: float = borrow(TaskCommon, "period")
    rate_hz: float = borrow(TaskCommon, "rate_hz")
    input_seed: int = borrow(TaskCommon, "input_seed")

    def __post_init__(self):
        check_fields(self)


def _load(task, dt: float, dtype) -> np.ndarray:
    """Grayscale ``[H, W]`` of task.image (None: default_image()); checks task.n_out == H."""
    if task.image is None:
        img, what = default_image(), "the built-in default_image()"
    else:
        if not os.path.isfile(task.image):
            raise TaskError("task.image", f"image file not found: {task.image}")
        try:
            img = load_image(task.image)
        except ValueError as exc:
            raise TaskError("task.image", f"unreadable image: {exc}") from None
        what = f"task.image {task.image}"
    height, width = img.shape
    if task.n_out != height:
        raise TaskError(
            "task.n_out",
            f"must equal the image's height ({height} rows, one output per row, of {what}, "
            f"{height} x {width}) for task.kind image, got {task.n_out}",
        )
    return img


def _build(task, dt: float, dtype, img) -> tuple[EventPattern, EventPattern]:
    """``(inputs [P, n_in] 0/1, targets [P, H] counts)`` as events, P = task.period / dt: the
    spikes of :func:`image_task` (tested), without its dense rasters."""
    key_in, key_out = jax.random.split(jax.random.PRNGKey(task.input_seed))
    events = image_to_events(img, duration=task.period, key=key_out, threshold=task.image_threshold)
    T = int(np.rint(task.period / dt))
    if T < 1:
        raise ValueError(f"trial of {task.period!r} s is shorter than half a step (dt={dt!r} s)")
    last = np.rint(events.times / dt) >= T  # as image_task: a spike at the very end -> last step
    times = np.where(last, (T - 1) * dt, events.times)
    bins, ids, _ = events_to_bins(SpikeEvents(times, events.ids), img.shape[0], dt, T * dt)
    steps, in_ids, _ = frozen_poisson_events(key_in, task.n_in, task.rate_hz, T * dt, dt)
    return (
        EventPattern(steps, in_ids, T, task.n_in, dtype=dtype),
        EventPattern(bins, ids, T, img.shape[0], dtype=dtype),
    )


register(
    TaskKind(
        name="image",
        params=ImageParams,
        load=_load,
        build=_build,
    )
)
