"""Keyed randomness: every random number is a pure function of (seed, purpose, key, counter).

A unit's k-th sample uses the uniform ``u = U(seed, purpose, unit, k)``, never "the next number
of a shared generator". Grouping units into one vectorized process, splitting them, resuming a
run or spreading runs over processes therefore never changes a single sample (DESIGN.md,
"Randomness that does not depend on grouping").

The hash is SplitMix64's finalizer, applied three times::

    key  = mix(mix(seed ⊕ φ·purpose) ⊕ unit)           (fixed per unit, computed once)
    bits = mix(key ⊕ φ·(counter + 1))
    u    = (bits >> 11) · 2⁻⁵³ ∈ [0, 1)

with φ = 0x9E3779B97F4A7C15. It is vectorized over units with NumPy's wrapping uint64
arithmetic, or compiled (:func:`asyncneurons.learning.compiled.uniforms_into`, the same integers) for
one counter per key. This is the one place where a seed turns into random numbers.
"""

from __future__ import annotations

import hashlib

import numpy as np

from asyncneurons.learning import compiled

_PHI = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)
_TWO53 = 1.0 / 9007199254740992.0
_ONE = np.uint64(1)

# Purposes: one independent family of streams each.
INIT = 1  # initial weights of the actor, keyed by (target unit, source index)
SAMPLE = 2  # a unit's sampling noise, keyed by (unit, sample index)
SAMPLE2 = 3  # second uniform of a sample (Gaussian units: Box-Muller)
DELAY = 4  # per-edge synaptic delays, keyed by (target unit, source unit)
REWARD_DELAY = 5  # per-unit reward delays
RETRO_DELAY = 6  # per-edge retrograde delays
CRITIC_INIT = 7  # initial weights of the critic
ENV = 8  # environment seeds, keyed by (run, episode)
ACTION = 9  # the environment's default action before the network has spoken
RUN = 10  # seed of each run of an experiment
PHASE = 11  # clock phases of units firing on their own clock
PERIOD = 12  # clock periods of units, keyed by unit (drawn once)
JITTER = 13  # jitter of a unit's clock ticks, keyed by (unit, tick index)
INTERVAL = 14  # intervals between a unit's Poisson ticks, keyed by (unit, tick index)


def mix(z: np.ndarray) -> np.ndarray:
    """SplitMix64 finalizer on a uint64 array (wraps modulo 2⁶⁴)."""
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


def _u64(x) -> np.ndarray:
    return np.atleast_1d(np.asarray(x, dtype=np.int64)).astype(np.uint64)


def seed_of(*parts) -> int:
    """A 63-bit seed derived from any sequence of ints and strings (stable across platforms)."""
    text = "/".join(str(p) for p in parts).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "little") >> 1


def unit_keys(seed: int, purpose: int, units) -> np.ndarray:
    """The fixed per-unit keys ``mix(mix(seed ⊕ φ·purpose) ⊕ unit)`` for an array of unit ids."""
    salt = (0x9E3779B97F4A7C15 * int(purpose)) % (1 << 64)
    base = mix(np.array([int(seed) % (1 << 64)], dtype=np.uint64) ^ np.uint64(salt))
    return mix(base ^ _u64(units))


def uniforms(keys: np.ndarray, counters) -> np.ndarray:
    """Uniforms in [0, 1) for each key at its counter (arrays broadcast)."""
    if (isinstance(counters, np.ndarray) and counters.dtype == np.int64 and keys.ndim == 1
            and counters.shape == keys.shape and keys.dtype == np.uint64):
        out = np.empty(keys.shape)
        compiled.uniforms_into(keys, counters, out)
        return out
    c = counters.astype(np.uint64) if isinstance(counters, np.ndarray) else _u64(counters)
    bits = mix(keys ^ (_PHI * (c + _ONE)))
    return (bits >> _S11).astype(np.float64) * _TWO53


def uniform_grid(seed: int, purpose: int, rows, cols) -> np.ndarray:
    """Uniforms ``U[i, j]`` keyed by (rows[i], cols[j]): used for per-edge draws."""
    keys = unit_keys(seed, purpose, rows)[:, None]
    return uniforms(keys, np.asarray(cols, dtype=np.int64)[None, :])


def uniform_at(seed: int, purpose: int, key: int, counter: int) -> float:
    """One uniform keyed by (key, counter)."""
    return float(uniforms(unit_keys(seed, purpose, [key]), [counter])[0])
