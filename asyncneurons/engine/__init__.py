"""The engine: a compiled network run in time.

:mod:`~asyncneurons.engine.network` compiles the graph into groups, the units served together;
:mod:`~asyncneurons.engine.simulation` runs them as processes on one SimPy clock, in the order of
:mod:`~asyncneurons.engine.events`, beside the environment process that steps the task and
broadcasts the TD error (:mod:`~asyncneurons.engine.environment`).

* How values travel along synapses: :mod:`~asyncneurons.engine.transmission` (with
  :mod:`~asyncneurons.engine.history_kernels`) and :mod:`~asyncneurons.engine.jitter`.
* When units fire: :mod:`~asyncneurons.engine.clocks` and :mod:`~asyncneurons.engine.windows`.
* When learning signals land: :mod:`~asyncneurons.engine.landings` (the broadcast TD error),
  :mod:`~asyncneurons.engine.retrograde` (signals along synapses), and
  :mod:`~asyncneurons.engine.relaxation` (MAP relaxation, with
  :mod:`~asyncneurons.engine.relaxation_kernels`).
* The synchronous limit without SimPy: :mod:`~asyncneurons.engine.instant` and
  :mod:`~asyncneurons.engine.chain`; :mod:`~asyncneurons.engine.replicas` (with
  :mod:`~asyncneurons.engine.replica_kernels`) runs several runs of it together.
* :mod:`~asyncneurons.engine.reference`, the layer-synchronous oracle the engine is held to, and
  :mod:`~asyncneurons.engine.supervised`, the batched protocol of one-step supervised tasks.
* A run's whole state saved and restored (:mod:`~asyncneurons.engine.checkpoint`), and a run
  stopped between two events (:mod:`~asyncneurons.engine.interrupts`).
"""
