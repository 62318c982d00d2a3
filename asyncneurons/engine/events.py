"""Events on the one SimPy clock, and the order of events within one instant.

SimPy orders its queue by (time, priority, insertion). We give every kind of event a priority
class, so that everything due at the same instant happens in a defined order:

1. **Learning signals**: the broadcast TD error first, then retrograde signals, deeper layers
   first; signals landing on a unit in one instant are summed (in the order of their senders'
   unit ids) and the unit learns once from the sum.
2. **Deliveries** of values on synapses (and of the action to the environment).
3. **Firing**: units sample, in rank order (a unit after every unit that can reach it through
   zero-delay synapses), so a unit firing "once per instant" has seen every value of the instant.
   Then, under MAP Propagation, the relaxation steps and their messages, step by step
   (:mod:`asyncneurons.engine.relaxation`).
4. **The environment steps.**

Within a class, events keep the order in which they were scheduled. An event caused by another
at the same instant joins the queue behind everything already due then with a lower class, so
causality is never violated: at zero delay, a whole environment step (observation → layers →
action → step) unfolds inside one instant, in exactly the order of the layer-synchronous loop.
"""

from __future__ import annotations

import heapq
import math

import simpy
from simpy.events import PENDING

LEARN = 100  # the broadcast TD error lands; then retrograde signals, deeper layers first:
DELIVER = 100_000
FIRE = 200_000  # + rank
ENV = 900_000


def retro_arrival(rank: int, max_rank: int) -> int:
    """Priority of retrograde signals landing on a unit of ``rank``: after every deeper unit
    has learned, before the unit itself learns from what landed (:func:`retro_apply`)."""
    return LEARN + 2 + 2 * (max_rank - rank)


def retro_apply(rank: int, max_rank: int) -> int:
    """Priority at which a unit learns from the retrograde signals that landed this instant."""
    return LEARN + 3 + 2 * (max_rank - rank)



class Environment(simpy.Environment):
    """SimPy's environment, plus scheduling at an absolute time (no rounding through a delay)."""

    def schedule_at(self, event, priority: int, time: float, value=None, callback=None):
        """Schedule a fresh triggered ``event`` at ``time`` (≥ now) with ``priority``."""
        event.env = self
        event.callbacks = [callback] if callback is not None else []
        event._value = value
        event._ok = True
        heapq.heappush(self._queue, (time, priority, next(self._eid), event))
        return event


class WakeUp:
    """One wake-up of an owner in the queue, at the earliest (time, priority) asked for.

    :meth:`arm` schedules an event calling ``callback`` unless one as early is armed already; an
    earlier one supersedes it, and the superseded event, when it comes, is not :meth:`current`.
    Firing windows (:mod:`asyncneurons.engine.windows`) and the queue of retrograde signals
    (:mod:`asyncneurons.engine.retrograde`) each keep one; ``token`` and ``armed`` are part of their
    checkpoints."""

    __slots__ = ("env", "callback", "token", "armed")

    def __init__(self, env, callback):
        self.env, self.callback = env, callback
        self.token = 0
        self.armed = None  # (time, priority) of the wake-up in the queue

    def arm(self, time: float, priority: int) -> None:
        best = (time, priority)
        if math.isinf(time) or (self.armed is not None and self.armed <= best):
            return
        self.token += 1
        self.armed = best
        self.env.schedule_at(Signal.__new__(Signal), priority, time, self.token, self.callback)

    def current(self, event) -> bool:
        """Whether ``event`` is the armed wake-up (no longer armed once it has come)."""
        if event._value != self.token:
            return False  # superseded by an earlier wake-up
        self.armed = None
        return True

    def state(self) -> dict:
        return {"token": self.token, "armed": list(self.armed) if self.armed is not None else None}

    def restore(self, state: dict) -> None:
        self.token = int(state["token"])
        self.armed = tuple(state["armed"]) if state["armed"] is not None else None


def run_until(env: simpy.Environment, until: simpy.events.Event, stop=None) -> None:
    """``env.run(until=until)``, asking ``stop()`` between two events: when it answers true the
    run returns there, with no event half-processed (:func:`asyncneurons.engine.interrupts.between_events`)."""
    step = env.step
    try:
        if stop is None:
            while until.callbacks is not None:
                step()
        else:
            while until.callbacks is not None and not stop():
                step()
    except simpy.core.EmptySchedule:
        raise RuntimeError(f'No scheduled events left but "until" event was not triggered: {until}') from None


class Signal(simpy.events.Event):
    """An event that is already triggered and fires after ``delay`` ms with a given priority.

    Like SimPy's ``Timeout``, but with a priority class, so that the order within an instant is
    ours (see the module docstring), and with an optional callback run when it is processed.
    """

    __slots__ = ()

    def __init__(self, env: simpy.Environment, delay: float, priority: int, value=None, callback=None):
        self.env = env
        self.callbacks = [callback] if callback is not None else []
        self._value = value
        self._ok = True
        env.schedule(self, priority, delay)


def pending(env: simpy.Environment) -> simpy.events.Event:
    """A fresh untriggered event (a process waits on it until :func:`trigger` schedules it)."""
    return simpy.events.Event(env)


def done(env: simpy.Environment) -> simpy.events.Event:
    """An event already triggered and processed: a process yielding it goes on at once, as one
    does after a wake-up that came while it was busy (a restored process, :mod:`asyncneurons.engine.checkpoint`)."""
    event = simpy.events.Event(env)
    event._ok, event._value, event.callbacks = True, None, None
    return event


def trigger(event: simpy.events.Event, priority: int, value=None) -> None:
    """Schedule an untriggered event now with ``priority``; no-op if it is already triggered."""
    if event._value is PENDING:
        event._ok = True
        event._value = value
        event.env.schedule(event, priority, 0.0)


def trigger_at(event: simpy.events.Event, priority: int, time: float, value=None) -> None:
    """Schedule an untriggered event at ``time`` (≥ now) with ``priority``; no-op if it is already
    triggered. A firing window uses it to hand on what a unit did at its own time."""
    if event._value is PENDING:
        event._ok = True
        event._value = value
        heapq.heappush(event.env._queue, (time, priority, next(event.env._eid), event))
