"""Transmission along synapses: when a value sent at t with delay d is applied to the receiver.

Semantically every value lands at t + d, in the delivery class of that instant
(:mod:`asyncneurons.events`). How the engine achieves that depends on the receiver:

* **Eager** (receivers firing ``on_input``): each (delay, batch of buckets) becomes one event,
  since every arrival instant may make the unit sample.
* **Lazy** (receivers firing ``on_all`` or on a ``clock``): an arrival can only matter when the
  unit samples, so it goes into the receiver's inbox, ordered by (arrival time, sending order),
  and is applied when the unit next looks at what it holds (:func:`flush`). For ``on_all`` the
  inbox also tells when the last value of the next wave lands; one timer event at that instant
  wakes the unit. With every synapse on its own continuous delay this saves one event per
  synapse per wave and changes no result: the unit sees exactly the values it would have seen.
"""

from __future__ import annotations

import heapq
import math

import numpy as np

from . import events


def write(tg, b, values, wave: int) -> None:
    """Apply one bucket's values (and wave tags) to the receiving group's held inputs."""
    if b.pairs is not None:
        rows, cols, pos = b.pairs
        tg.H[rows, cols] = values[pos]
        tg.T[rows, cols] = wave
    elif b.rows is None:
        tg.H[:, b.cols] = values[b.pos]
        tg.T[:, b.cols] = wave
    else:
        ix = np.ix_(b.rows, b.cols)
        tg.H[ix] = values[b.pos]
        tg.T[ix] = wave


def cells(tg, b):
    """Index of the (row, column) entries a bucket writes, for the ``need`` array."""
    if b.pairs is not None:
        return b.pairs[0], b.pairs[1]
    if b.rows is None:
        return (slice(None), b.cols)
    return np.ix_(b.rows, b.cols)


def send_plan(buckets) -> list:
    """Buckets grouped by delay: [(delay, eager buckets, lazy buckets)] in first-seen order."""
    plan: dict = {}
    for b in buckets:
        eager, lazy = plan.setdefault(b.delay, ([], []))
        (lazy if b.target.lazy else eager).append(b)
    return [(d, e, lz) for d, (e, lz) in plan.items()]


class Inboxes:
    """The lazy arrivals of one simulation."""

    def __init__(self, sim):
        self.sim = sim
        self.seq = 0

    def post(self, b, t_arrival: float, values, wave: int) -> None:
        tg = b.target
        heapq.heappush(tg.inbox, (t_arrival, self.seq, b, values, wave))
        self.seq += 1
        if tg.wake is not None and wave > tg.last_wave:
            ix = cells(tg, b)
            tg.need[ix] = np.minimum(tg.need[ix], t_arrival)
            self._schedule(tg)

    def _schedule(self, tg) -> None:
        fire_at = float(tg.need.max())
        if fire_at < tg.wake_at:
            tg.wake_at = fire_at
            tg.wake_token += 1
            self.sim.env.schedule_at(events.Signal.__new__(events.Signal), events.DELIVER, fire_at,
                                     (tg, tg.wake_token), self._timer)

    def _timer(self, event):
        tg, token = event._value
        if token != tg.wake_token:
            return  # superseded by an earlier wake-up
        tg.wake_at = math.inf
        flush(tg, self.sim.env.now)
        if tg.T.min() > tg.last_wave:
            events.trigger(tg.wake, events.FIRE + tg.rank)

    def after_fire(self, tg) -> None:
        """Recompute when the next wave will be complete, from the arrivals still in the inbox."""
        if tg.wake is None:
            return
        tg.need = np.where(tg.T > tg.last_wave, -math.inf, math.inf)
        for t, _, b, _, wave in tg.inbox:
            if wave > tg.last_wave:
                ix = cells(tg, b)
                tg.need[ix] = np.minimum(tg.need[ix], t)
        tg.wake_at = math.inf
        tg.wake_token += 1
        if math.isfinite(tg.need.max()):
            self._schedule(tg)


def flush(tg, now: float) -> None:
    """Apply every arrival due by ``now``, in order of (arrival time, sending order)."""
    inbox = tg.inbox
    while inbox and inbox[0][0] <= now:
        _, _, b, values, wave = heapq.heappop(inbox)
        write(tg, b, values, wave)
