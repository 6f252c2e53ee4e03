"""Tasks for ssjax: spike-raster data (SSBM ``.ras`` files, frozen Poisson inputs) and the task
kinds a config's ``task.kind`` names, one module each (:mod:`ssjax.tasks.registry`)."""

from ssjax.tasks.raster import (
    RasterError,
    SpikeEvents,
    events_to_raster,
    frozen_poisson,
    load_raster,
    raster_to_events,
    read_ras,
    write_ras,
)

__all__ = [
    "RasterError",
    "SpikeEvents",
    "events_to_raster",
    "frozen_poisson",
    "load_raster",
    "raster_to_events",
    "read_ras",
    "write_ras",
]
