"""The synchronous limit without SimPy: the events of one instant as direct calls, in SimPy's order.

When every synapse, retrograde synapse and reward delay is zero, nothing is jittered, units fire
``on_all`` without a refractory period, every receiver is eager (:mod:`asyncneurons.engine.transmission`)
and every unit has an input, a whole environment step unfolds inside the instant of the
environment's step (:mod:`asyncneurons.engine.events`): the TD error lands, retrograde signals travel
down the layers, the observation is delivered, the layers fire in rank order and the output's
action reaches the environment, which steps next. No event of that cascade is due at a later
time.

SimPy orders the events of one instant by (priority, insertion). :class:`Instant` keeps them in
a heap ordered by exactly that pair and calls each one's function with its payload, in place of
an event object, a callback list and, for a firing, a generator process resumed by a wake-up
event. The same functions run in the same order on the same values. A wake-up (``on_all``: a
new value on every synapse, ``T.min() > last_wave``) is a count: every group fires exactly once
per instant (by induction on rank, its senders each deliver once), so a group is complete
exactly when the last of its senders has delivered (``Simulation._delivery``). Chains of layers
do more in one entry (:mod:`asyncneurons.engine.chain`). ``tests/test_instant.py`` holds the instant to
the event engine (episodes, weights, traces, moments, critic, checkpoints both ways), and
``Simulation(..., synchronous=False)`` keeps the event engine as the oracle. The environment
process runs the instant where it would have waited for the action
(:mod:`asyncneurons.engine.environment`).

The instant does not apply when events are recorded (``on_event``): the records keep the event
engine's order of firing within a rank.
"""

from __future__ import annotations

import heapq
import itertools

from asyncneurons.model import delays


class Instant:
    """The events of the current instant: ``at(priority, call, payload)`` queues ``call(payload)``;
    :meth:`run` calls them in (priority, insertion) order, including those queued meanwhile."""

    __slots__ = ("queue", "count")

    def __init__(self):
        self.queue: list = []
        self.count = itertools.count()

    def at(self, priority: int, call, payload) -> None:
        heapq.heappush(self.queue, (priority, next(self.count), call, payload))

    def run(self) -> None:
        q, pop = self.queue, heapq.heappop
        while q:
            _, _, call, payload = pop(q)
            call(payload)


def applies(sim, *, on_event, windows: bool, resume) -> bool:
    """Whether ``sim`` (built up to its groups, transmission and learning plans) is in the
    synchronous limit that :class:`Instant` serves (see the module docstring)."""
    s, t = sim.scenario, sim.scenario.timing
    if on_event is not None or windows or sim.relaxation is not None or sim.landings is not None:
        return False
    if t.firing != "on_all" or sim.reward_jitter is not None or sim.retro_jitter is not None \
            or not delays.is_zero(t.synapse_jitter) or s.env.pacing not in ("wait", "clock"):
        return False
    if any(d != 0 for _, _, d in sim.graph.edges(data="delay")) or \
            any(d != 0 for _, _, d in sim.graph.edges(data="retro_delay")):
        return False
    if any(d != 0 for d, _ in sim._broadcast_batches):
        return False
    for grp in [sim.input_group, *sim.groups]:
        if grp.lazy or (grp is not sim.input_group and grp.refractory > 0):
            return False
    if any(not sim.graph.in_degree(n) for n, r in sim.graph.nodes(data="role") if r != "input"):
        return False  # a unit without inputs never fires, nor does any unit it feeds
    if resume is not None and (resume[0].get("queue") or resume[0].get("windows") is not None):
        return False
    return True
