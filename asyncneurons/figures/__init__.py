"""Figures: what is drawn from run and sweep folders.

:mod:`~asyncneurons.figures.plotdata` reads the folders' tables; :mod:`~asyncneurons.figures.plots`
draws learning curves, tolerance curves and diagnostics; :mod:`~asyncneurons.figures.raster` draws
the events of one recorded run; :mod:`~asyncneurons.figures.bands` computes bands and error bars;
:mod:`~asyncneurons.figures.figure_style` is the style every figure shares.
"""
