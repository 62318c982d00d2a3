"""The style every figure of the package is drawn in: its width, resolution and matplotlib settings
(sizes for paper), shared by the result plots (:mod:`asyncneurons.figures.plots`) and the spike rasters
(:mod:`asyncneurons.figures.raster`)."""

from __future__ import annotations

import functools

DPI = 200
WIDTH = 7.0  # inches
STYLE = {"font.size": 9, "axes.titlesize": 9, "axes.labelsize": 9, "xtick.labelsize": 8,
         "ytick.labelsize": 8, "legend.fontsize": 8, "legend.title_fontsize": 8,
         "axes.spines.top": False, "axes.spines.right": False, "svg.hashsalt": "asyncneurons"}


def styled(build):
    """Build (and later save) a figure under the package's style (sizes for paper)."""
    @functools.wraps(build)
    def wrapper(*args, **kwargs):
        import matplotlib

        with matplotlib.rc_context(STYLE):
            return build(*args, **kwargs)
    return wrapper
