"""Units on their own clocks: the tick times of ``clock`` and ``poisson`` firing.

Each unit u has a phase φ_u and a period T_u, drawn once when the network is built from
``timing.firing_phase`` and ``timing.firing_period`` (a number, or a distribution; either may be given per layer as a
list, as every firing key may; a graph file's node may set its unit's own), keyed by
(seed, unit) like reward delays (:func:`asyncneurons.model.delays.unit_delays`; purposes ``PHASE`` and
``PERIOD`` of :mod:`asyncneurons.learning.streams`). Without a phase, φ_u = T_u: the first tick comes one
period after t = 0, as when every unit ticked in phase.

``clock``: the unit's k-th tick (k = 0, 1, …) is at ::

    c_0 = φ_u,   c_{k+1} = c_k + T_u              (floating-point, by repeated addition)
    tick_k = max(c_k + j_k, tick_{k−1})           (tick_{−1} = 0)

where j_k ≥ 0 is the jitter of tick k, drawn from ``timing.firing_jitter`` at the uniform keyed
by (seed, unit, k) (purpose ``JITTER``). Jitter makes a tick late; it never moves the clock
c_k on which later ticks are laid, so it does not accumulate. A jitter larger than the period
can make tick k fall before tick k − 1: the tick then happens at the instant of tick k − 1
(never earlier), and the unit samples twice at that instant unless a refractory period skips
the second sample. With zero jitter and a fixed period, tick_k = c_k, the sums an unjittered
clock has always made.

``poisson``: exponential intervals at rate λ = ``timing.firing_rate`` (per ms)::

    tick_{−1} = 0,   tick_k = tick_{k−1} + I_k,   I_k = −ln(1 − U(seed, INTERVAL, unit, k)) / λ

Draws of one unit are computed in blocks of :data:`BLOCK` ticks by one call on a fixed-size array,
so a tick's draw is the same number whether one unit's process or a firing window over a whole
layer asks for it (vectorized transcendental functions may round an element differently
depending on the length of the array they work on; a fixed block length rules that out).
"""

from __future__ import annotations

import numba
import numpy as np

from asyncneurons.model import delays
from asyncneurons.learning import compiled, streams
from asyncneurons.learning import kernel_cache  # noqa: F401  (stamps the kernel cache before any @njit)
from asyncneurons.model.delays import of_layer

BLOCK = 256  # draws per unit computed together


def _own(g, name, layer: int, timing, key: str):
    """A unit's value of firing key ``key``: its node attribute in the graph file, else the
    scenario's for its layer."""
    return delays.own_value(g, name, key, of_layer(getattr(timing, key), layer, key))


def unit_clocks(layer_of: dict, timing, seed: int, g=None) -> dict:
    """Each unit's (phase, period) in ms under ``clock`` firing, keyed by its name; ``layer_of``
    maps each unit to its layer (the keys may be given per layer), and a node of ``g`` may set a
    unit's own ``firing_period`` and ``firing_phase`` (without a phase, its phase is its period)."""
    out = {}
    for layer in sorted(set(layer_of.values())):
        units = [n for n, l in layer_of.items() if l == layer]
        periods = delays.unit_delays(units, of_layer(timing.firing_period, layer, "firing_period"), seed, streams.PERIOD)
        periods = {n: delays.own_value(g, n, "firing_period", p) for n, p in periods.items()}
        phase = of_layer(timing.firing_phase, layer, "firing_phase")
        phases = periods if phase is None else delays.unit_delays(units, phase, seed, streams.PHASE)
        phases = {n: delays.own_value(g, n, "firing_phase", p) for n, p in phases.items()}
        out.update({n: (phases[n], periods[n]) for n in periods})
    return out


def fusing_key(name, layer: int, clock, timing, g=None):
    """What two units must share to be served by one process: their clock (None when firing is
    not on a clock). Units with random jitter or Poisson ticks never share one."""
    if timing.firing == "poisson" or (timing.firing == "clock" and not delays.is_constant(
            _own(g, name, layer, timing, "firing_jitter"))):
        return ("own clock", str(name))
    return clock if timing.firing == "clock" else None


class Clocks:
    """The tick state of several clocks: ``at`` holds each clock's next tick (see the module
    docstring); :meth:`advance` moves chosen clocks on by one tick."""

    def __init__(self, timing, seed: int, names, clocks: dict, layer_of: dict, g=None):
        n = len(names)
        self.poisson = timing.firing == "poisson"
        keys = np.array([delays.node_key(x) for x in names], dtype=np.int64)
        if self.poisson:  # the distribution of each clock's draws
            self.specs = [{"dist": "exponential", "mean": 1.0 / float(_own(g, x, layer_of[x], timing, "firing_rate"))}
                          for x in names]
            self.ukeys = streams.unit_keys(seed, streams.INTERVAL, keys)
        else:
            self.specs = [_own(g, x, layer_of[x], timing, "firing_jitter") for x in names]
            self.ukeys = streams.unit_keys(seed, streams.JITTER, keys)
            self.period = np.array([clocks[x][1] for x in names], dtype=float)
        self.spec = None if all(delays.is_zero(sp) for sp in self.specs) else True  # None: no draws at all
        self.block = np.zeros((n, BLOCK))
        self.block_of = np.full(n, -1, dtype=np.int64)
        self.laws = None  # each clock's F⁻¹, made at the first fill (_fill)
        self.ticks = np.arange(BLOCK, dtype=np.int64)
        self.k = np.zeros(n, dtype=np.int64)
        everyone = np.arange(n)
        if self.poisson:
            self.c = np.zeros(n)
            self.at = self.c + self._draws(everyone)
        else:
            self.c = np.array([clocks[x][0] for x in names], dtype=float)
            self.at = self.c.copy() if self.spec is None else np.maximum(self.c + self._draws(everyone), 0.0)

    def _draws(self, idx: np.ndarray) -> np.ndarray:
        """The draw of tick k[i] of each clock i in ``idx``."""
        k = self.k[idx]
        b = k // BLOCK
        for i in idx[b != self.block_of[idx]]:
            first = int(self.k[i]) // BLOCK * BLOCK
            u = streams.uniforms(self.ukeys[i:i + 1], np.arange(first, first + BLOCK, dtype=np.int64))
            self.block[i] = delays.draw(self.specs[i], u)
            self.block_of[i] = first // BLOCK
        return self.block[idx, k % BLOCK]

    def advance(self, idx: np.ndarray) -> np.ndarray:
        """Move clocks ``idx`` to their next tick; return the new tick times."""
        idx = np.asarray(idx, dtype=np.int64)
        while True:  # in one compiled pass once every clock's draw is at hand (the same operations)
            missing = _advance(idx, self.k, self.c, self.at, self.period if not self.poisson else self.c,
                               self.block, self.block_of, self.poisson, self.spec is not None)
            if missing < 0:
                return self.at[idx]
            self._fill(missing, int(self.k[missing]) + 1)

    def _fill(self, i: int, k: int) -> None:
        """Clock i's block of draws holding tick k: F⁻¹ of the uniforms keyed by (unit, tick), the
        law read once per clock and the uniforms into buffers made once (the same numbers as
        ``delays.draw(spec, streams.uniforms(...))``, on an array of the same length)."""
        first = k // BLOCK * BLOCK
        if self.laws is None:
            self.laws = [delays.law(sp) for sp in self.specs]
            self.fill_keys, self.fill_ticks, self.fill_u = np.empty(BLOCK, np.uint64), np.empty(BLOCK, np.int64), \
                np.empty(BLOCK)
        self.fill_keys.fill(self.ukeys[i])
        self.fill_ticks[:] = self.ticks
        self.fill_ticks += first
        compiled.uniforms_into(self.fill_keys, self.fill_ticks, self.fill_u)  # U(key, tick), as streams.uniforms
        self.block[i] = self.laws[i](self.fill_u)
        self.block_of[i] = first // BLOCK

    def fill_due(self) -> None:
        """Fill the block of every clock whose next tick it does not hold (what :meth:`advance`
        fills one clock at a time, as a firing asks; each draw depends on (unit, tick) alone)."""
        for i in np.flatnonzero((self.k + 1) // BLOCK != self.block_of).tolist():
            self._fill(i, int(self.k[i]) + 1)

    def advance_numpy(self, idx: np.ndarray) -> np.ndarray:
        """:meth:`advance` in NumPy (the definition the compiled pass follows)."""
        self.k[idx] += 1
        if self.poisson:
            self.at[idx] = self.at[idx] + self._draws(idx)
        else:
            self.c[idx] = self.c[idx] + self.period[idx]
            self.at[idx] = self.c[idx] if self.spec is None else np.maximum(self.c[idx] + self._draws(idx), self.at[idx])
        return self.at[idx]

    def state(self) -> dict:
        return {"c": self.c, "k": self.k, "at": self.at}

    def restore(self, state: dict) -> None:
        self.c = np.array(state["c"], dtype=float)
        self.k = np.array(state["k"], dtype=np.int64)
        self.at = np.array(state["at"], dtype=float)  # the cached draws depend on (unit, k) alone: kept


@numba.njit(cache=True, nogil=True)
def _advance(idx, k, c, at, period, block, block_of, poisson, drawn):  # pragma: no cover - compiled
    """:meth:`Clocks.advance_numpy` of clocks ``idx``: each moves to tick k + 1, Poisson
    ``at ← at + I_k``, clock ``c ← c + T``, ``at ← c`` (``max(c + j_k, at)`` with jitter). Returns
    −1; or, having changed nothing, a clock whose block of draws does not hold its next tick."""
    if poisson or drawn:
        for q in range(idx.shape[0]):
            i = idx[q]
            if (k[i] + 1) // BLOCK != block_of[i]:
                return i
    for q in range(idx.shape[0]):
        i = idx[q]
        kk = k[i] + 1
        k[i] = kk
        if poisson:
            at[i] = at[i] + block[i, kk % BLOCK]
        else:
            c[i] = c[i] + period[i]
            if drawn:
                a = c[i] + block[i, kk % BLOCK]
                at[i] = a if a > at[i] or a != a else at[i]
            else:
                at[i] = c[i]
    return -1
