"""MAP relaxation as events: values forward, errors back, each unit on its own schedule.

After a unit samples (a forward pass), it relaxes ``map_steps`` times, every ``relax_period``
ms. At its k-th step a hidden unit computes its feed-forward mean from the values it holds,
adds the top-down messages it holds (the latest from each downstream synapse, summed in the
order of the senders' unit ids), moves its value (:func:`~asyncneurons.rules.map_prop.relax_step`)
and sends it forward. Whenever a unit's value or held inputs change, it sends its error term back
along its incoming synapses (once per instant). After the last step, it records its trace at the
relaxed state. The output samples once and holds its value; it sends errors back as its inputs
change and records with the hidden units. Relaxation messages never make a unit sample.

Order within an instant (after all firing, before the environment steps), for step k = 0 … N:
relaxation steps k, then value deliveries k, then error computations k, then error deliveries k;
the traces are recorded last. At zero delay and zero period, this is exactly the published
synchronous (Jacobi) iteration: every unit's step k uses the values and errors of step k − 1.
"""

from __future__ import annotations

import math

import numpy as np

from . import events
from .kernels import accumulate_trace, potential, softplus, sum_by_sender
from .rules.map_prop import map_error, relax_step, topdown_messages

R0 = 300_000


def _step(k):
    return R0 + 4 * k


def _by_delay(buckets) -> list:
    plan: dict = {}
    for b in buckets:
        plan.setdefault(b.delay, []).append(b)
    return list(plan.items())


class Relaxation:
    """The relaxation machinery of one simulation."""

    def __init__(self, sim, steps: int, step_size: float, period: float):
        self.sim, self.steps, self.step_size, self.period = sim, steps, step_size, period

    def start(self, grp) -> None:
        """A group has just sampled: send its error back and schedule its relaxation."""
        grp.relax_gen += 1
        self._send_error(grp, 0)
        env = self.sim.env
        if grp.role == "output" or self.steps == 0:
            events.Signal(env, self.period * self.steps, _step(self.steps + 1), (grp, grp.relax_gen), self._record)
        else:
            events.Signal(env, self.period, _step(1), (grp, grp.relax_gen, 1), self._relax)

    def _relax(self, event):
        grp, gen, k = event._value
        if gen != grp.relax_gen:
            return  # a newer sample restarted this unit's relaxation
        self.sim.transmission.flush(grp)
        pot = potential(grp.P, grp.H)
        blocks = list(grp.td_store.values())
        td = sum_by_sender(blocks, grp.size) if blocks else np.zeros(grp.size)
        var = grp.lp.variance
        grp.values = relax_step(grp.values, softplus(pot), var, self.step_size * var, td)
        env = self.sim.env
        for delay, buckets in _by_delay(grp.buckets):
            events.Signal(env, delay, _step(k) + 1, (buckets, grp.values, k), self._value_lands)
        self._request_error(grp, k)
        if k < self.steps:
            events.Signal(env, self.period, _step(k + 1), (grp, gen, k + 1), self._relax)
        else:
            events.Signal(env, 0.0, _step(self.steps + 1), (grp, gen), self._record)

    def _value_lands(self, event):
        buckets, values, k = event._value
        for b in buckets:
            tg = b.target
            self.sim.transmission.flush(tg)
            if b.pairs is not None:
                rows, cols, pos = b.pairs
                tg.H[rows, cols] = values[pos]
            elif b.rows is None:
                tg.H[:, b.cols] = values[b.pos]
            else:
                tg.H[np.ix_(b.rows, b.cols)] = values[b.pos]
            self._request_error(tg, k)

    def _request_error(self, grp, k: int) -> None:
        if not grp.error_pending and grp.retro_buckets:
            grp.error_pending = True
            events.Signal(self.sim.env, 0.0, _step(k) + 2, (grp, k), self._error)

    def _error(self, event):
        grp, k = event._value
        grp.error_pending = False
        self._send_error(grp, k)

    def _send_error(self, grp, k: int) -> None:
        if not grp.retro_buckets or grp.last_fire == -math.inf:
            return  # nothing to send back, or no sample yet to explain
        self.sim.transmission.flush(grp)
        e = map_error(grp.kind, grp.values, potential(grp.P, grp.H), grp.lp, grp.frozen_action)
        C = topdown_messages(grp.P, e)
        env = self.sim.env
        for delay, buckets in _by_delay(grp.retro_buckets):
            messages = []
            for b in buckets:
                if b.rows is None:
                    messages.append((b.target, id(b), grp.uids, b.pos, C[:, b.span if b.span is not None else b.cols]))
                else:
                    messages.append((b.target, id(b), grp.uids[b.rows], b.pos, C[np.ix_(b.rows, b.cols)]))
            events.Signal(env, delay, _step(k) + 3, messages, self._error_lands)

    @staticmethod
    def _error_lands(event):
        for target, key, uids, pos, block in event._value:
            target.td_store[key] = (uids, pos, block)

    def _record(self, event):
        grp, gen = event._value
        if gen != grp.relax_gen:
            return
        self.sim.transmission.flush(grp)
        e = map_error(grp.kind, grp.values, potential(grp.P, grp.H), grp.lp, grp.frozen_action)
        accumulate_trace(grp.E, grp.decay, e, grp.H)
