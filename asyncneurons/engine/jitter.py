"""Jitter per event: a fresh lateness added to the fixed delay of every synaptic delivery.

With ``[timing] synapse_jitter`` the value that unit s sends for the n-th time (n = 0, 1, …,
counted per sender) reaches the receiver of synapse e = (s → r) at

    a(e, n) = t_s(n) + d_e + j(e, n),    j(e, n) = F⁻¹(U(seed, SYNAPSE_JITTER, e, n)),

where t_s(n) is the send time, d_e the synapse's fixed delay and F⁻¹ the inverse CDF of the
jitter distribution (:mod:`asyncneurons.model.delays`); the edge's key mixes the names of its two
units. The draw depends on (seed, edge, n) alone, so grouping units, firing windows or worker
count never change it. Jitters are ≥ 0.

**Newest wins.** A later send can then arrive first. The receiver holds, on each synapse, the
value of the latest send that has arrived (the highest send index among a(e, ·) ≤ t). An
arrival older than the value already held (a(e, m) > a(e, n) for some later send n > m) is
*stale*: it is dropped and counted. Two sends arriving at the same instant are not stale: the
later send is held. Each stale arrival is counted once, when the send that overtakes it
leaves, so the count is a function of the sends alone (``stale_synaptic`` in diagnostics).
A stale arrival changes nothing the receiver holds, so under ``on_input`` it is no arrival: the
unit samples at the arrivals that are not stale (and a refractory period defers only those).
Jitter is not available with MAP Propagation (:mod:`asyncneurons.model.scenario` says so in one line).

:func:`hold` is the definition written out for one synapse; the engine computes the same thing
from the senders' histories (:mod:`asyncneurons.engine.transmission`, :mod:`asyncneurons.engine.history_kernels`).

**The TD error and retrograde signals.** ``reward_jitter`` delays δ_k to unit i until
(t_k + ρ_i) + j(i, k), keyed by (seed, unit, k) (a population: its first unit); ``retro_jitter``
delays the n-th retrograde signal along a synapse until (t + retro_delay) + j(e, n), keyed by
(seed, synapse, n). Newest wins there too: a δ of an older step than one the unit already
learned from, or a retrograde signal older than one already landed on its synapse, is dropped
and counted when it lands (``stale_reward``, ``stale_retrograde``). Units that receive them
then each learn at their own instants, so they are not fused (:mod:`asyncneurons.engine.simulation`).
"""

from __future__ import annotations

import numpy as np

from asyncneurons.model import delays
from asyncneurons.learning import compiled, streams

SYNAPSE_JITTER = 15  # purpose of the per-send synaptic jitter, keyed by (edge, send index)
REWARD_JITTER = 16  # purpose of the per-broadcast reward jitter, keyed by (unit, agent step)
RETRO_JITTER = 17  # purpose of the per-send retrograde jitter, keyed by (edge, retrograde send index)


def edge_keys(seed: int, targets, sources, purpose: int = SYNAPSE_JITTER) -> np.ndarray:
    """The fixed key of each edge ``sources[i] → targets[i]`` (node keys, :func:`delays.node_key`)."""
    tgt = np.asarray(targets, dtype=np.int64)
    src = np.asarray(sources, dtype=np.int64).astype(np.uint64)
    return streams.mix(streams.unit_keys(seed, purpose, tgt) ^ src)


def unit_keys(seed: int, names) -> np.ndarray:
    """The fixed key of each unit receiving the TD error (a population: its first unit's)."""
    return streams.unit_keys(seed, REWARD_JITTER, np.array([delays.node_key(n) for n in names], dtype=np.int64))


def draw(spec, keys: np.ndarray, sends: np.ndarray) -> np.ndarray:
    """j(e, n) for edges (or units) of ``keys`` at send indices ``sends`` (int64): F⁻¹(U(key, n))."""
    return late(spec, streams.uniforms(keys, sends), sends)


def late(spec, u: np.ndarray, sends: np.ndarray) -> np.ndarray:
    """The jitters F⁻¹(u) of sends ``sends`` from their keyed uniforms ``u`` (every draw passes
    here; the jitter depends on u alone, and the tests set jitters by hand per send through it).
    ``spec`` is a jitter spec or its inverse CDF prepared once (:func:`delays.law`)."""
    inverse_cdf = spec if callable(spec) else delays.law(spec)
    return np.asarray(inverse_cdf(u), dtype=np.float64)


_late = late  # as defined here (a test may set jitters by hand through jitter.late)


def compiled_law(spec) -> np.ndarray:
    """``[1, low, high − low]`` when the jitters of ``spec`` are drawn in compiled code
    (:func:`asyncneurons.engine.history_kernels.append_jittered`, per send): a uniform law, whose
    F⁻¹(u) = low + u (high − low) takes the two operations :func:`delays.law` takes, and
    :func:`late` as defined here; else ``[0, 0, 0]`` (drawn through :func:`late`)."""
    if (late is _late and isinstance(spec, dict) and spec.get("dist") == "uniform"
            and {k for k in spec if k != "dist"} == {"low", "high"}):
        low = float(spec["low"])
        return np.array([1.0, low, float(spec["high"]) - low])
    return np.zeros(3)


class Broadcast:
    """The jitters j(i, k) = F⁻¹(U(seed, REWARD_JITTER, i, k)) of the units ``keys`` receiving
    the TD error of agent step k, the distribution parsed and the buffers made once."""

    def __init__(self, spec, keys: np.ndarray):
        self.law = delays.law(spec)
        self.keys = keys
        self.steps = np.empty(len(keys), dtype=np.int64)
        self.u = np.empty(len(keys))

    def __call__(self, step: int) -> list:
        """j(i, step) for every receiving unit i, in the order of ``keys``."""
        steps, u = self.steps, self.u
        steps.fill(step)
        compiled.uniforms_into(self.keys, steps, u)  # U(key, step), as streams.uniforms gives it
        return late(self.law, u, steps).tolist()


def hold(sends, delay: float):
    """Newest wins on one synapse: ``sends`` is a list of (send time, jitter, value) in sending
    order. Returns (arrivals, stale) where ``arrivals`` lists (arrival time, send index, value,
    held) in order of arrival (ties in sending order) and ``held`` says whether the receiver
    holds that value from then on; ``stale`` is the number of arrivals dropped.

    a(n) = t(n) + d + j(n); send m is stale iff a(m) > a(n) for some n > m.
    """
    times = [(t + delay) + j for t, j, _ in sends]
    order = sorted(range(len(sends)), key=lambda n: (times[n], n))
    newest, out = -1, []
    for n in order:
        held = n > newest
        newest = max(newest, n)
        out.append((times[n], n, sends[n][2], held))
    return out, sum(1 for *_, held in out if not held)
