"""The broadcast TD error landing on each unit at its own time, inside firing windows.

Under Global REINFORCE (and the backprop baselines, whose units learn from δ the same way) every
unit that hears δ_k learns when it lands, after the unit's own reward delay d_i::

    t_i ← t_i + 1        W_i ← W_i + Adam_{t_i}(E_i · δ_k)        at  t_k + d_i

(E_i the unit's trace — under exponential traces decayed to the landing time,
exp(−(t_k + d_i − t_E)/τ) E_i, :mod:`asyncneurons.learning.traces` — W_i its row of weights and bias, t_i
its own count of optimizer steps; the trace is cleared after learning when δ_k opens an episode). A landing changes that unit's
row only, and nothing outside the row reads it before the unit samples again. So a landing
need not be an event: no landing cuts a firing window, and a layer whose units have different
reward delays stays one group instead of splitting into one group per unit. δ_k is kept with the
time it was broadcast, and the landings on a unit are applied, in time order, when something
reads its row — just before
the unit samples at t (every landing with t_k + d_i ≤ t: learning signals of an instant come
before its firings), before retrograde signals reach it, and whenever the state is observed
(an episode's end, a checkpoint, the end of the run). Adam's step count is kept per unit, so
each row takes exactly the steps the unit would take as a group of its own: the same bits as the
event engine.

Records of the landings (``on_event(t, unit, "reward", δ, k)``) are passed on in the event
engine's order: each waits until the next record that comes after it.
"""

from __future__ import annotations

import heapq

import numpy as np
from numba import njit
from asyncneurons.learning import kernel_cache  # noqa: F401  (stamps the kernel cache before any @njit)

from asyncneurons.engine.history_kernels import _b1_2, _f8_1, _f8_2, _i8_1, array_addresses
from asyncneurons.learning.compiled import _adam_span
from asyncneurons.learning.optim import adam_constants
from asyncneurons.learning.traces import decay_factors

_CAPACITY = 64


@njit(cache=True, error_model="numpy")
def due_landings(rows, times, delay, landed, bt, n, out_row, out_k, out_t):
    """For each row r = ``rows[i]``, the broadcasts k ≥ ``landed[r]`` (of the ``n`` kept) that have
    landed by ``times[i]`` (``bt[k] + delay[r] ≤ times[i]``), in order: written to ``out_row``,
    ``out_k`` and their landing times to ``out_t``; ``landed`` moves past them. Returns their number."""
    c = 0
    for i in range(rows.shape[0]):
        r = rows[i]
        until = times[i]
        d = delay[r]
        k = landed[r]
        while k < n and bt[k] + d <= until:
            out_row[c], out_k[c], out_t[c] = r, k, bt[k] + d
            c += 1
            k += 1
        landed[r] = k
    return c


@njit(cache=True, error_model="numpy")
def apply_landings(P, M, V, E, t, rows, ks, factor, scaled, bdelta, blr, breset, bc1, bc2, T, b1, c1, b2, c2, eps,
                   X):
    """Landing j on row r = ``rows[j]`` of broadcast k = ``ks[j]``, in order: ``t[r] += 1``,
    ``P[r] ← P[r] + Adam_{t[r]}(X · bdelta[k])`` at rate ``blr[k]`` with ``X = E[r]`` (or
    ``E[r] · factor[j]`` when ``scaled``: the trace decayed to the landing time), then ``E[r] ← 0``
    when ``breset[k]``; bias corrections ``bc1[t]``, ``bc2[t]`` while t < T."""
    m, w = P.shape
    Pf, Mf, Vf, Ef = P.reshape(m * w), M.reshape(m * w), V.reshape(m * w), E.reshape(m * w)
    for j in range(rows.shape[0]):
        r = rows[j]
        k = ks[j]
        a, b = r * w, r * w + w
        if scaled:
            f = factor[j]
            for q in range(w):
                X[q] = Ef[a + q] * f
        else:
            for q in range(w):
                X[q] = Ef[a + q]
        tt = t[r] + 1
        t[r] = tt
        if tt < T:
            _adam_span(Pf[a:b], Mf[a:b], Vf[a:b], X, bdelta[k], blr[k], b1, c1, b2, c2, bc1[tt], bc2[tt], True, eps)
        else:
            _adam_span(Pf[a:b], Mf[a:b], Vf[a:b], X, bdelta[k], blr[k], b1, c1, b2, c2, 1.0, 1.0, False, eps)
        if breset[k]:
            for q in range(a, b):
                Ef[q] = 0.0


@njit(cache=True, error_model="numpy", inline="always")
def _due(k, n, bt, d, until):
    """How many broadcasts from the ``k``-th (of the ``n`` kept) have landed by ``until`` after delay ``d``."""
    c = 0
    while k + c < n and bt[k + c] + d <= until:
        c += 1
    return c


@njit(cache=True, error_model="numpy")
def land_rows(rows, times, delay, landed, bt, n, P, M, V, E, t, bdelta, blr, breset, bc, T, ab):
    """:func:`due_landings` and :func:`apply_landings` in one pass, per-sample traces: each row
    r = ``rows[i]`` takes, in order, every broadcast k ≥ ``landed[r]`` that has landed by
    ``times[i]``. Adam's bias corrections are the rows of ``bc`` (``bc[0, t]``, ``bc[1, t]`` while
    t < T), its constants ``ab`` = (β₁, 1−β₁, β₂, 1−β₂, ε): packed, since a call costs about
    0.07 µs per argument. The update is ``E[r] · δ_k`` read from the trace in place (the same
    numbers as a copy of it). Rows side by side in ``rows`` and in memory that take the same
    broadcasts at the same step count learn as one span (:func:`_adam_span` over their rows
    at once: each number meets the same operations, so the same bits, in a loop long enough to
    vectorize — a layer whose units all sample before their last broadcast lands is one span).
    Returns the number of landings applied."""
    m, w = P.shape
    Pf, Mf, Vf, Ef = P.reshape(m * w), M.reshape(m * w), V.reshape(m * w), E.reshape(m * w)
    b1, c1, b2, c2, eps = ab[0], ab[1], ab[2], ab[3], ab[4]
    c = 0
    nr = rows.shape[0]
    i = 0
    while i < nr:
        r = rows[i]
        k0 = landed[r]
        due = _due(k0, n, bt, delay[r], times[i])
        if due == 0:  # nothing has landed on this row since it last learned
            i += 1
            continue
        t0 = t[r]
        j = i + 1  # the rows that follow r in memory and take the same broadcasts at the same step count
        while (j < nr and rows[j] == r + (j - i) and landed[rows[j]] == k0 and t[rows[j]] == t0
               and _due(k0, n, bt, delay[rows[j]], times[j]) == due):
            j += 1
        a, b = r * w, (r + j - i) * w
        for s in range(due):
            k = k0 + s
            tt = t0 + 1 + s
            if tt < T:
                _adam_span(Pf[a:b], Mf[a:b], Vf[a:b], Ef[a:b], bdelta[k], blr[k], b1, c1, b2, c2, bc[0, tt],
                           bc[1, tt], True, eps)
            else:
                _adam_span(Pf[a:b], Mf[a:b], Vf[a:b], Ef[a:b], bdelta[k], blr[k], b1, c1, b2, c2, 1.0, 1.0, False,
                           eps)
            if breset[k]:
                for q in range(a, b):
                    Ef[q] = 0.0
        for q in range(i, j):
            t[rows[q]] = t0 + due
            landed[rows[q]] = k0 + due
        c += due * (j - i)
        i = j
    return c


# a group's arrays, by address (land_rows_at): rows of its ``land_tab``
LT_P, LT_M, LT_V, LT_E, LT_T, LT_LANDED, LT_DELAY, LT_BLR = range(8)
LAND_ARRAYS = ("P", "M", "V", "E", "t", "landed", "row_delay", "blr")
# the broadcasts kept and Adam's corrections and constants: rows of ``Landings.ltab``
LB_BT, LB_BDELTA, LB_BRESET, LB_BC, LB_AB = range(5)
KEPT_ARRAYS = ("bt", "bdelta", "breset", "bc", "ab")


@njit(cache=True, error_model="numpy", inline="always")
def group_arrays(gtab, ltab):
    """(P, M, V, E, t, landed, delay, blr) of a group and (bt, bdelta, breset, bc, ab), from their
    addresses (``land_tab`` and ``Landings.ltab``, :func:`~asyncneurons.engine.history_kernels.array_addresses`)."""
    return ((_f8_2(gtab, LT_P), _f8_2(gtab, LT_M), _f8_2(gtab, LT_V), _f8_2(gtab, LT_E), _i8_1(gtab, LT_T),
             _i8_1(gtab, LT_LANDED), _f8_1(gtab, LT_DELAY), _f8_1(gtab, LT_BLR)),
            (_f8_1(ltab, LB_BT), _f8_1(ltab, LB_BDELTA), _b1_2(ltab, LB_BRESET)[:, 0], _f8_2(ltab, LB_BC),
             _f8_1(ltab, LB_AB)))


@njit(cache=True, error_model="numpy")
def land_rows_at(rows, times, gtab, ltab, n, T):
    """:func:`land_rows`, the group's arrays and the broadcasts' read from their addresses
    (:func:`group_arrays`): a call passed four arrays instead of fifteen."""
    (P, M, V, E, t, landed, delay, blr), (bt, bdelta, breset, bc, ab) = group_arrays(gtab, ltab)
    return land_rows(rows, times, delay, landed, bt, n, P, M, V, E, t, bdelta, blr, breset, bc, T, ab)


def _watch(attrs):
    """For attributes ``attrs`` (object, name): a function of no argument telling whether some
    ``object.name`` is no longer the object last given to the second function returned (one
    expression, ``o0.bt is not v0 or …``, made once: asked before every call, given anew only
    when something was replaced)."""
    names = {}
    terms = []
    for i, (obj, name) in enumerate(attrs):
        if not name.isidentifier():
            raise ValueError(f"not an attribute name: {name!r}")
        names[f"o{i}"], names[f"v{i}"] = obj, None
        terms.append(f"o{i}.{name} is not v{i}")
    exec(f"def replaced():\n    return {' or '.join(terms) or 'False'}\n", names)

    def held(values):
        for i, v in enumerate(values):
            names[f"v{i}"] = v
    return names["replaced"], held


class Landings:
    """The broadcasts not yet landed on every unit of ``groups`` (one reward delay per unit in
    ``delays``), applied row by row (see the module docstring)."""

    def __init__(self, sim, groups, delays: dict):
        self.sim = sim
        self.groups = list(groups)
        self.adam = sim.adam
        self.n = 0
        self.bt = np.empty(_CAPACITY)
        self.bdelta = np.empty(_CAPACITY)
        self.breset = np.zeros(_CAPACITY, dtype=np.bool_)
        for g in self.groups:
            # a population hears δ as one, after its first unit's reward delay (asyncneurons.engine.network)
            g.row_delay = np.array([float(delays[g.names[0] if g.kind.population else n]) for n in g.names])
            g.landed = np.zeros(g.size, dtype=np.int64)  # per unit: broadcasts applied (index into the kept ones)
            g.t = np.zeros(g.size, dtype=np.int64)  # Adam's step count, per unit
            g.blr = np.empty(_CAPACITY)  # the layer's learning rate at each kept broadcast's step
            g.every_row = np.arange(g.size)
            g.land_X = np.empty(g.P.shape[-1])  # one row's update, scratch
            g.land_traces = getattr(g, "tau", None)  # None: per-sample traces (land_rows)
        T = self.adam.bias_correction_steps
        b1, c1, b2, c2, _, _, _, eps = adam_constants(self.adam, T)
        self.constants = (T, b1, c1, b2, c2, eps)
        self.ab = np.array([b1, c1, b2, c2, eps])  # as land_rows reads them
        self.bc = np.zeros((2, 1))  # Adam's bias corrections by step count: rows bc1, bc2
        self.bc1, self.bc2 = self.bc[0], self.bc[1]
        self.total = 0  # broadcasts so far: no unit has taken more optimizer steps
        self.records: list = []  # heap of landings not yet recorded
        for g in self.groups:  # whether an array land_rows_at reads has been replaced (_tables)
            g.land_replaced, g.land_held = _watch([(self, name) for name in KEPT_ARRAYS] +
                                                  [(g, name) for name in LAND_ARRAYS])
        self._tables()

    def _tables(self) -> None:
        """The addresses :func:`land_rows_at` reads (``ltab``, and each group's ``land_tab``), and
        what each group's ``land_replaced`` compares with: whether an array they hold has been
        replaced since (broadcasts kept in larger arrays, a restored state, a cut window's copy
        loaded), asked before each call. A group whose arrays a table cannot hold has
        ``land_tab`` None (and :func:`land_rows` is called)."""
        kept = [getattr(self, name) for name in KEPT_ARRAYS]
        self.ltab = array_addresses(kept)
        self.held_arrays = [kept]
        for g in self.groups:
            arrays = [getattr(g, name) for name in LAND_ARRAYS]
            try:
                g.land_tab = array_addresses(arrays) if g.P.ndim == 2 else None
            except ValueError:
                g.land_tab = None
            g.land_held(kept + arrays)
            self.held_arrays.append(arrays)

    # ------------------------------------------------------------------ broadcasts
    def broadcast(self, delta: float, step: int, reset: bool) -> None:
        """δ of agent step ``step`` leaves now; it lands on each unit after its reward delay."""
        if self.n == len(self.bt):
            self._make_room()
        now = self.sim.env.now
        k = self.n
        self.bt[k], self.bdelta[k], self.breset[k] = now, delta, reset
        for g in self.groups:
            g.blr[k] = self.sim.lr(g.layer, step)
        self.n += 1
        self.total += 1
        self._corrections()
        if self.sim.on_event is not None:
            for g in self.groups:
                for name, uid, d in zip(g.names, g.uids.tolist(), g.row_delay.tolist()):
                    heapq.heappush(self.records, (now + d, step, d, -g.rank, uid, name, float(delta)))

    def _corrections(self) -> None:
        """Adam's bias corrections for every step count a unit can have reached (one per broadcast
        so far), grown here so that landing needs no check."""
        T = self.constants[0]
        need = min(self.total + 1, T)
        if need > self.bc.shape[1]:
            size = min(max(need, 2 * self.bc.shape[1]), T)
            consts = [adam_constants(self.adam, t) for t in range(size)]
            self.bc = np.array([[c[4] for c in consts], [c[5] for c in consts]])
            self.bc1, self.bc2 = self.bc[0], self.bc[1]

    def _make_room(self) -> None:
        lo = min(int(g.landed.min()) for g in self.groups)
        keep = self.n - lo
        cap = len(self.bt) if keep < len(self.bt) // 2 else 2 * len(self.bt)
        def moved(a):  # in place while the capacity is kept (the arrays' addresses stay: _tables)
            out = a if cap == len(a) else np.zeros(cap, dtype=a.dtype)
            out[:keep] = a[lo:self.n]
            out[keep:] = 0
            return out
        self.bt, self.bdelta, self.breset = moved(self.bt), moved(self.bdelta), moved(self.breset)
        for g in self.groups:
            g.blr = moved(g.blr)
            g.landed -= lo
        self.n = keep

    # ------------------------------------------------------------------ applying them
    def land(self, g, rows, times) -> None:
        """Apply to rows ``rows`` of ``g`` (int64) every landing up to their times ``times``
        (float64, inclusive)."""
        tau = g.land_traces
        if tau is None:  # per-sample traces: found and applied in one pass
            if g.land_replaced():
                self._tables()
            if g.land_tab is not None:
                land_rows_at(rows, times, g.land_tab, self.ltab, self.n, self.constants[0])
                return
            land_rows(rows, times, g.row_delay, g.landed, self.bt, self.n, g.P, g.M, g.V, g.E, g.t, self.bdelta, g.blr,
                      self.breset, self.bc, self.constants[0], self.ab)
            return
        T, b1, c1, b2, c2, eps = self.constants
        rows = np.asarray(rows, dtype=np.int64)
        times = np.asarray(times, dtype=np.float64)
        most = len(rows) * self.n  # at most every kept broadcast on every row
        pr, pk, pt = np.empty(most, dtype=np.int64), np.empty(most, dtype=np.int64), np.empty(most)
        c = due_landings(rows, times, g.row_delay, g.landed, self.bt, self.n, pr, pk, pt)
        if c == 0:
            return
        pr, pk, pt = pr[:c], pk[:c], pt[:c]
        # exponential traces: the trace decayed to each landing's time (asyncneurons.learning.traces.at_landing)
        factor = decay_factors(g.trace_time[pr], pt, tau)
        apply_landings(g.P, g.M, g.V, g.E, g.t, pr, pk, factor, True, self.bdelta, g.blr, self.breset,
                       self.bc1, self.bc2, T, b1, c1, b2, c2, eps, g.land_X)

    def settle(self, g=None) -> None:
        """Apply every landing up to now (inclusive) to group ``g``, or to every group."""
        now = self.sim.env.now
        for grp in self.groups if g is None else [g]:
            if int(grp.landed.min()) < self.n:
                times = np.empty(grp.size)
                times.fill(now)
                self.land(grp, grp.every_row, times)

    # ------------------------------------------------------------------ records
    def ordered(self, on_event):
        """``on_event`` with the records of landings put in their places (see the module docstring)."""
        def record(t, name, kind, value, wave):
            if self.records:
                if kind in ("observation", "env_step"):  # a landing at this instant lands first, unless sent now
                    self.emit(lambda r: r[0] < t or (r[0] == t and r[2] > 0.0))
                else:  # retrograde signals and samples come after every landing of their instant
                    self.emit(lambda r: r[0] <= t)
            on_event(t, name, kind, value, wave)
        self._on_event = on_event
        return record

    def emit(self, before=None) -> None:
        """Pass on the records of landings for which ``before`` holds (all that landed by now if None)."""
        if before is None:
            now = self.sim.env.now
            before = lambda r: r[0] <= now  # noqa: E731
        while self.records and before(self.records[0]):
            t, step, _, _, _, name, delta = heapq.heappop(self.records)
            self._on_event(t, name, "reward", delta, step)

    # ------------------------------------------------------------------ checkpoints
    def state(self) -> dict:
        return {"n": self.n, "total": self.total, "bt": self.bt[:self.n].copy(), "bdelta": self.bdelta[:self.n].copy(),
                "breset": self.breset[:self.n].copy(), "landed": [g.landed.copy() for g in self.groups],
                "blr": [g.blr[:self.n].copy() for g in self.groups], "records": [list(r) for r in self.records]}

    def restore(self, state: dict) -> None:
        n = self.n = int(state["n"])
        self.total = int(state["total"])
        cap = max(_CAPACITY, 2 * n)
        def filled(a, dtype):
            out = np.zeros(cap, dtype=dtype)
            out[:n] = a
            return out
        self.bt, self.bdelta = filled(state["bt"], np.float64), filled(state["bdelta"], np.float64)
        self.breset = filled(state["breset"], np.bool_)
        for g, landed, blr in zip(self.groups, state["landed"], state["blr"]):
            g.landed = np.array(landed, dtype=np.int64)
            g.blr = filled(blr, np.float64)
        self.records = [tuple(r) for r in state["records"]]
        heapq.heapify(self.records)
        self._corrections()


__all__ = ["Landings", "apply_landings", "due_landings", "land_rows", "land_rows_at"]
