"""Studies: the runs and sweeps of a scenario, and the folders they write.

:mod:`~asyncneurons.study.runner` runs an experiment into a run folder and resumes one;
:mod:`~asyncneurons.study.recorder` writes what a run records, :mod:`~asyncneurons.study.folders`
keeps a folder to one command and away from links, :mod:`~asyncneurons.study.provenance` records
the stack and :mod:`~asyncneurons.study.diagnostics` the inside of each episode.
:mod:`~asyncneurons.study.sweep` runs a grid of overrides × seeds, each run named by
:mod:`~asyncneurons.study.identity`; :mod:`~asyncneurons.study.claims` tests a reproduced number
against the published one.
"""
