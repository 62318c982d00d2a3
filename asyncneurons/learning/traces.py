"""The actor's eligibility traces in time: how a trace decays between the events that use it.

``[learning] trace`` chooses one of two forms (docs/rules.md, "Traces in time"):

``per_sample`` (published, the default)
    at each record (a sample, or what a rule records instead)  ``E ← λγ E + g ⊗ h``;
    a learning signal landing at any time uses E as it stands.

``exponential`` (``trace_tau`` = τ in ms)
    at a record at time t      ``E ← exp(−(t − t_E)/τ) E + g ⊗ h``,   then t_E ← t;
    a signal landing at t      uses ``exp(−(t − t_E)/τ) E``  (E and t_E are left as they are).

A group keeps, per unit, its trace E as of the time stamp t_E of its last record (``trace_time``,
0 at the start). Learning reads the trace decayed to the landing time without storing it, so a
trace is multiplied by exactly one factor ``exp(−Δt/τ)`` per record, Δt the time since the
previous record, whatever landed in between: the stored E is what a per-sample trace holds when
``λγ = exp(−Δt/τ)``. A new-episode mark clears E and leaves t_E (0 decays to 0).

Every factor is NumPy's ``exp`` of ``(t_E − t)/τ`` on a fresh contiguous array, one element per
unit, so a unit's factor has the same bits whether it is computed alone, in a fused group or in
a firing window (:mod:`asyncneurons.learning.compiled` says why ``exp`` is never compiled). When t = t_E
the factor is exp(0) = 1 exactly: in the synchronous limit, where every event of a run happens at
one instant, exponential traces never decay.

The critic's TD(λ) trace is not concerned: it decays by λ_c γ per environment step.
"""

from __future__ import annotations

import numpy as np

from asyncneurons.learning.kernels import accumulate_trace

TRACES = ("per_sample", "exponential")

_F8 = np.dtype(np.float64)


def decay_factors(stamps, now, tau: float) -> np.ndarray:
    """``exp(−(t − t_E)/τ)`` per unit for stamps t_E at time ``now`` (a number, or one time per
    unit), computed as ``exp((t_E − t)/τ)`` (the same bits: negation is exact)."""
    x = np.subtract(stamps, now, dtype=np.float64)  # a fresh contiguous array
    x /= tau
    np.exp(x, out=x)
    return x


def record_decay(group, now, rows=None):
    """The factor the traces of ``group`` (rows ``rows`` only, when given) decay by when they
    record at ``now``: λγ (one number) per sample; ``exp(−(now − t_E)/τ)`` per unit, exponential,
    whose stamps then move to ``now``."""
    tau = getattr(group, "tau", None)
    if tau is None:
        return group.decay
    if rows is None:
        f = decay_factors(group.trace_time, now, tau)
        group.trace_time[...] = now
    else:
        f = decay_factors(group.trace_time[rows], now, tau)
        group.trace_time[rows] = now
    return f


def record(group, g: np.ndarray, H: np.ndarray, now, rows=None) -> None:
    """The trace records ``g ⊗ h`` at ``now`` (every unit of the group, or rows ``rows`` with
    their inputs ``H``): ``E ← decay · E + g ⊗ h`` with the factor of :func:`record_decay`."""
    decay = record_decay(group, now, rows)
    if rows is None:
        accumulate_trace(group.E, decay, g, H)
        return
    E = group.E[rows]
    accumulate_trace(E, decay, g, H)
    group.E[rows] = E


def decays_in_one_call(E: np.ndarray, stamps: np.ndarray, now) -> bool:
    """Whether trace ``E`` may be decayed to a landing at ``now`` by the one compiled call
    (:func:`~asyncneurons.engine.history_kernels.trace_at_landing` and the cascade's
    :func:`~asyncneurons.engine.history_kernels.weight_max_chain_at_landing`): ``now`` one time for
    every row (not one per row, as inside a firing window), ``E`` rows without leading axes, and
    ``E`` and its stamps (one per row) contiguous float64."""
    return (not isinstance(now, np.ndarray) and E.ndim == 2 and E.dtype == _F8 and stamps.dtype == _F8
            and stamps.shape == E.shape[:1] and E.flags.c_contiguous and stamps.flags.c_contiguous)


def at_landing(group, sim) -> np.ndarray:
    """The trace a learning signal landing now (``sim.now``) uses: E itself per sample;
    ``exp(−(now − t_E)/τ) · E`` (one rounding per entry), exponential. A simulation may offer
    ``decayed_trace(E, stamps, now, τ)``, the same operations in one compiled call (NumPy's ``exp``
    by address, :func:`asyncneurons.engine.history_kernels.trace_at_landing`), answering None
    where it does not apply."""
    tau = getattr(group, "tau", None)
    if tau is None:
        return group.E
    now = sim.now
    compiled = getattr(sim, "decayed_trace", None)  # the engine's one compiled call, the same operations
    if compiled is not None:
        E = compiled(group.E, group.trace_time, now, tau)
        if E is not None:
            return E
    return group.E * decay_factors(group.trace_time, now, tau)[..., None]


def configure(group, learning, gamma: float, shape=None) -> None:
    """Give ``group`` its trace form from ``[learning]``: ``decay`` = λγ, and under exponential
    traces ``tau`` = τ and the stamps ``trace_time`` (0, one per unit; ``shape`` when the units
    carry leading axes, as replicas do)."""
    group.decay = learning.lambda_ * gamma
    if learning.trace == "exponential":
        group.tau = float(learning.trace_tau)
        group.trace_time = np.zeros(group.E.shape[:-1] if shape is None else shape)
    else:
        group.tau = None
