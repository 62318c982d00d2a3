"""Learning: what a unit computes and how it learns, as pure functions of arrays.

Keyed randomness (:mod:`~asyncneurons.learning.streams`); the array operations every unit and rule
shares (:mod:`~asyncneurons.learning.kernels`) and their compiled forms, bit for bit
(:mod:`~asyncneurons.learning.compiled`); unit kinds (:mod:`~asyncneurons.learning.units`);
eligibility traces in time (:mod:`~asyncneurons.learning.traces`); the published Adam
(:mod:`~asyncneurons.learning.optim`); the learning rules, one module each
(:mod:`asyncneurons.learning.rules`); and the critic that computes the TD error
(:mod:`~asyncneurons.learning.critic`, :mod:`~asyncneurons.learning.map_critic`, chosen by
:mod:`~asyncneurons.learning.critic_choice`). Nothing here knows of time, SimPy, files or plots:
the engine decides when these functions are called.
"""
