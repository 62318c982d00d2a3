"""MAP relaxation, each unit on its own schedule, reading its neighbours as they stand.

After a unit samples, it relaxes ``map_steps`` times, every ``relax_period`` ms. At its k-th step
a hidden unit computes its feed-forward mean from the values it holds, adds the top-down messages
W_ij e_j of its downstream units j (summed in the order of their unit ids), and moves its value
(:func:`~asyncneurons.learning.rules.map_prop.relax_step`). A unit's error term e_j is a function of its
state (value, held inputs, weights), so it changes whenever that state does (a sample, a step, a
value landing, a weight change), and unit i reads it as it stands when it reaches i: computed from
j's state as of the synapse's retrograde delay earlier. After the last step a unit records its
trace at the relaxed state. The output samples once and holds its value; it records with the
hidden units. Relaxation never makes a unit sample.

Order within an instant (after all firing, before the environment steps), for step k = 0 … N:
relaxation steps k, then the landing of the values they sent, then (in the message form) the
error terms those changes cause, then their landing; the traces are recorded last. At zero delay
and zero period, this is exactly the published synchronous (Jacobi) iteration: every unit's step k
uses the values and errors of step k − 1.

Two implementations: :class:`HistoryRelaxation`, the engine's, reads everything from histories
(one event per relaxation step of a group); :class:`EventRelaxation`, the test oracle, sends every
relaxed value and every error term as an event. They give the same bits
(``tests/test_map_delays.py``).
"""

from __future__ import annotations

import math

import numpy as np

from asyncneurons.engine import events
from asyncneurons.learning import traces
from asyncneurons.engine import relaxation_kernels as kern
from asyncneurons.learning.kernels import potential, softplus, sum_by_sender, sum_rows
from asyncneurons.learning.rules.map_prop import map_error, relax_step, topdown_messages

R0 = 300_000


def _step(k):
    return R0 + 4 * k


def _by_delay(buckets) -> list:
    plan: dict = {}
    for b in buckets:
        plan.setdefault(b.delay, []).append(b)
    return list(plan.items())


class EventRelaxation:
    """The relaxation as messages: kept as the test oracle of :class:`HistoryRelaxation`.

    Values travel forward and error terms back as events, one per (sender, delay) and step. A
    unit sends its error term at its sample, after each of its relaxation steps, when a relaxed
    value lands on it, when a sample lands on it (which needs eager transmission: the simulation
    chooses it for this path) and after it learns. The last two make it send whenever its state
    changes, the semantics :class:`HistoryRelaxation` reads from histories.
    """

    reads_histories = False

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

    def sample_landed(self, grp) -> None:
        """A sample arrived on one of the group's synapses: its error term changes."""
        self._request_error(grp, 0)

    def weights_changed(self, grp) -> None:
        """The group learned: its error term (and the weights it carries back) changed."""
        self._request_error(grp, 0)

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
        traces.record(grp, e, grp.H, self.sim.env.now)


class HistoryRelaxation:
    """The relaxation read from histories: one event per relaxation step of a group, no messages.

    Every group's samples and relaxed values (and the observations) enter a history with their
    send time and step; every group's weight rows enter one when it learns. A relaxing group reads
    what it holds on each synapse, and each downstream unit's error term as it stands when it
    reaches the group: computed from that unit's value, held inputs and weights as of its
    retrograde delay earlier (:mod:`asyncneurons.engine.relaxation_kernels`). The numbers are those of
    :class:`EventRelaxation` (a test holds the two equal).
    """

    reads_histories = True

    def __init__(self, sim, steps: int, step_size: float, period: float):
        self.sim, self.steps, self.step_size, self.period = sim, steps, step_size, period
        self.serial = 0
        self.wm = (-math.inf, -1)  # (time, serial) of the last environment step
        self._build()

    # ---------------------------------------------------------------- layout
    def _build(self) -> None:
        sim, g = self.sim, self.sim.graph
        groups = [sim.input_group, *sim.groups]
        dense, where = {}, {}
        for grp in groups:
            grp.hist = np.arange(len(dense), len(dense) + grp.size)
            for r, name in enumerate(grp.names):
                dense[name] = len(dense)
                where[name] = (grp, r)
        n = len(dense)
        self.ncols = np.ones(n, dtype=np.int64)
        ptr, col, src, dly = [0], [], [], []
        for name in sorted(dense, key=dense.get):
            grp, r = where[name]
            if grp is not sim.input_group:
                self.ncols[dense[name]] = grp.P.shape[1]
                for p in sorted(g.predecessors(name), key=lambda p: grp.col[p]):
                    col.append(grp.col[p])
                    src.append(dense[p])
                    dly.append(float(g.edges[p, name]["delay"]))
            ptr.append(len(col))
        self.in_ptr = np.array(ptr, dtype=np.int64)
        self.in_col, self.in_src = np.array(col, dtype=np.int64), np.array(src, dtype=np.int64)
        self.in_d = np.array(dly, dtype=float)
        fwd = max([d for *_, d in g.edges(data="delay")] + [0.0])
        back = max([d for *_, d in g.edges(data="retro_delay")] + [0.0])
        self.max_fwd, self.max_back = fwd, back  # an entry is dropped once the next one is held everywhere
        D, C = 16, int(self.ncols.max())
        self.T, self.K = np.full((n, D), -math.inf), np.zeros((n, D), dtype=np.int64)
        self.S, self.V = np.zeros((n, D), dtype=np.int64), np.zeros((n, D))
        self.A, self.head, self.count = np.zeros((n, D), dtype=np.int64), np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64)
        self.WT, self.WK = np.full((n, 4), -math.inf), np.zeros((n, 4), dtype=np.int64)
        self.WS, self.WP = np.zeros((n, 4), dtype=np.int64), np.zeros((n, 4, C))
        self.whead, self.wcount = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64)
        for grp in sim.groups:
            self._snapshot(grp, -math.inf)
            looks: dict = {}
            rows, cols, look = [], [], []
            for r, u in enumerate(grp.hist):
                for e in range(self.in_ptr[u], self.in_ptr[u + 1]):
                    rows.append(r)
                    cols.append(self.in_col[e])
                    look.append(looks.setdefault((int(self.in_src[e]), float(self.in_d[e])), len(looks)))
            grp.map_fill = (np.array(rows, dtype=np.int64), np.array(cols, dtype=np.int64),
                            np.array(look, dtype=np.int64), np.array([k[0] for k in looks], dtype=np.int64),
                            np.array([k[1] for k in looks], dtype=float), np.zeros(len(looks)))
            grp.map_plan = self._plan(grp, dense, where) if grp.role != "output" else None

    def _plan(self, grp, dense, where) -> dict:
        """What a relaxing group reads from downstream: queries (a sender, or a whole population
        output, at one retrograde delay) and, per synapse, where its message goes in the sum."""
        g = self.sim.graph
        edges = []  # (sender group, sender row, reader row, retrograde delay, column in the sender's P)
        for r, name in enumerate(grp.names):
            for j in g.successors(name):
                sg, sr = where[j]
                edges.append((sg, sr, r, float(g.edges[name, j]["retro_delay"]), sg.col[name]))
        senders = sorted({int(sg.uids[sr]) for sg, sr, *_ in edges})
        zrow = {u: i for i, u in enumerate(senders)}
        queries, q_index = [], {}
        e_q, e_pos, e_col, e_zrow, e_rrow = [], [], [], [], []
        for sg, sr, r, dr, c in edges:
            rows = tuple(range(sg.size)) if sg.kind.population else (sr,)
            key = (sg.gid, rows, dr)
            if key not in q_index:
                q_index[key] = len(queries)
                queries.append((sg, rows, dr))
            e_q.append(q_index[key])
            e_pos.append(rows.index(sr))
            e_col.append(c)
            e_zrow.append(zrow[int(sg.uids[sr])])
            e_rrow.append(r)
        q_ptr, q_units, q_dr = [0], [], []
        classes: dict = {}
        for q, (sg, rows, dr) in enumerate(queries):
            classes.setdefault((sg.kind.name, sg.lp, len(rows)), (sg.kind, sg.lp, []))[2].append(q)
            q_units.extend(int(sg.hist[r]) for r in rows)
            q_dr.append(dr)
            q_ptr.append(len(q_units))
        looks: dict = {}
        x_ptr, x_col, x_look = [0], [], []
        for q, (sg, rows, dr) in enumerate(queries):
            for r in rows:
                u = int(sg.hist[r])
                for e in range(self.in_ptr[u], self.in_ptr[u + 1]):
                    x_col.append(self.in_col[e])
                    x_look.append(looks.setdefault((int(self.in_src[e]), float(self.in_d[e]), dr), len(looks)))
                x_ptr.append(len(x_col))
        q_ptr = np.array(q_ptr, dtype=np.int64)
        e_q = np.array(e_q, dtype=np.int64)
        plan = {"q_ptr": q_ptr, "q_units": np.array(q_units, dtype=np.int64), "q_dr": np.array(q_dr, dtype=float),
                "e_q": e_q, "e_qu": q_ptr[e_q] + np.array(e_pos, dtype=np.int64),
                "e_col": np.array(e_col, dtype=np.int64), "e_zrow": np.array(e_zrow, dtype=np.int64),
                "e_rrow": np.array(e_rrow, dtype=np.int64), "n_senders": len(senders), "classes": [],
                "x_ptr": np.array(x_ptr, dtype=np.int64), "x_col": np.array(x_col, dtype=np.int64),
                "x_look": np.array(x_look, dtype=np.int64), "l_src": np.array([k[0] for k in looks], dtype=np.int64),
                "l_d1": np.array([k[1] for k in looks], dtype=float), "l_d2": np.array([k[2] for k in looks], dtype=float)}
        for kind, lp, qs in classes.values():
            qs = np.array(qs, dtype=np.int64)
            idx = np.concatenate([np.arange(q_ptr[q], q_ptr[q + 1]) for q in qs])
            plan["classes"].append((kind, lp, qs, idx))
        return plan

    # ---------------------------------------------------------------- histories
    def _grow(self) -> None:
        n, D = self.T.shape
        order = (self.head[:, None] - self.count[:, None] + D + np.arange(D)[None, :]) % D
        rows = np.arange(n)[:, None]
        def pad(a, fill):  # noqa: E306
            out = np.full((n, 2 * D), fill, a.dtype)
            out[:, :D] = a[rows, order]
            return out
        self.T, self.K, self.S = pad(self.T, -math.inf), pad(self.K, 0), pad(self.S, 0)
        self.V, self.A = pad(self.V, 0.0), pad(self.A, 0)
        self.head = self.count.copy()

    def _grow_weights(self) -> None:
        n, D, C = self.WP.shape
        order = (self.whead[:, None] - self.wcount[:, None] + D + np.arange(D)[None, :]) % D
        rows = np.arange(n)[:, None]
        WT, WS, WP = np.full((n, 2 * D), -math.inf), np.zeros((n, 2 * D), dtype=np.int64), np.zeros((n, 2 * D, C))
        WT[:, :D], WS[:, :D], WP[:, :D] = self.WT[rows, order], self.WS[rows, order], self.WP[rows, order]
        self.WT, self.WS, self.WP, self.WK = WT, WS, WP, np.zeros((n, 2 * D), dtype=np.int64)
        self.whead = self.wcount.copy()

    def _enter(self, units, k: int, values, action: int) -> None:
        now = self.sim.env.now
        values = np.ascontiguousarray(values, dtype=np.float64)
        while not kern.append(self.T, self.K, self.S, self.V, self.A, self.head, self.count, units, now, k,
                              values, action, self.serial, self.max_fwd, self.max_back, self._wm(now)):
            self._grow()
        self.serial += 1

    def _snapshot(self, grp, t: float) -> None:
        while not kern.append_weights(self.WT, self.WS, self.WP, self.whead, self.wcount, grp.hist, t,
                                      np.ascontiguousarray(grp.P), self.serial, self.max_back, self._wm(t)):
            self._grow_weights()
        self.serial += 1

    def _wm(self, tau: float) -> int:
        return self.wm[1] if self.wm[0] == tau else -1

    def _fill(self, grp, pr: int) -> None:
        tau = self.sim.env.now
        kern.fill_inputs(grp.H, *grp.map_fill, self.T, self.K, self.S, self.V, self.head, self.count, tau, pr,
                         self._wm(tau))

    # ---------------------------------------------------------------- hooks
    def inputs_sent(self, values) -> None:
        """The environment emitted an observation (at its step: everything due at this instant
        before it has happened)."""
        self.wm = (self.sim.env.now, self.serial)
        self._enter(self.sim.input_group.hist, 0, values, 0)

    def before_fire(self, grp) -> None:
        """A group is about to sample: let it hold the relaxed values that have reached it."""
        self._fill(grp, events.FIRE + grp.rank)

    def weights_changed(self, grp) -> None:
        self._snapshot(grp, self.sim.env.now)

    def start(self, grp) -> None:
        """A group has just sampled: enter the sample and schedule its relaxation."""
        grp.relax_gen += 1
        action = int(grp.frozen_action) if grp.frozen_action is not None and np.ndim(grp.frozen_action) == 0 else 0
        self._enter(grp.hist, 0, grp.values, action)
        env = self.sim.env
        if grp.role == "output" or self.steps == 0:
            events.Signal(env, self.period * self.steps, _step(self.steps + 1), (grp, grp.relax_gen), self._record)
        else:
            events.Signal(env, self.period, _step(1), (grp, grp.relax_gen, 1), self._relax)

    # ---------------------------------------------------------------- the step
    def _topdown(self, grp, pr: int) -> np.ndarray:
        """Σ_j W_ij e_j over the downstream units j, each as its error term reaches the group,
        added in ascending sender id (as :func:`~asyncneurons.learning.kernels.sum_by_sender` adds them)."""
        p = grp.map_plan
        if p is None or not len(p["e_q"]):
            return np.zeros(grp.size)
        tau = self.sim.env.now
        nq, nu = len(p["q_dr"]), len(p["q_units"])
        pot, val = np.empty(nu), np.empty(nu)
        act, seen, w = np.empty(nq, dtype=np.int64), np.empty(nq, dtype=np.bool_), np.empty(len(p["e_q"]))
        kern.read_senders(p["q_ptr"], p["q_units"], p["q_dr"], p["e_qu"], p["e_col"], p["x_ptr"], p["x_col"],
                          p["x_look"], p["l_src"], p["l_d1"], p["l_d2"], self.ncols, self.T, self.K, self.S, self.V, self.A, self.head,
                          self.count, self.WT, self.WK, self.WS, self.WP, self.whead, self.wcount, tau, pr,
                          self._wm(tau), pot, val, act, seen, w)
        e = np.empty(nu)
        for kind, lp, qs, idx in p["classes"]:
            m = len(idx) // len(qs)
            if kind.population:
                e[idx] = map_error(kind, val[idx].reshape(len(qs), m), pot[idx].reshape(len(qs), m), lp,
                                   act[qs]).reshape(-1)
            else:
                e[idx] = map_error(kind, val[idx], pot[idx], lp)
        held = seen[p["e_q"]]
        Z = np.zeros((p["n_senders"], grp.size))
        Z[p["e_zrow"][held], p["e_rrow"][held]] = w[held] * e[p["e_qu"][held]]
        return sum_rows(Z)

    def _relax(self, event):
        grp, gen, k = event._value
        if gen != grp.relax_gen:
            return  # a newer sample restarted this unit's relaxation
        pr = _step(k)
        self._fill(grp, pr)
        pot = potential(grp.P, grp.H)
        td = self._topdown(grp, pr)
        var = grp.lp.variance
        grp.values = relax_step(grp.values, softplus(pot), var, self.step_size * var, td)
        self._enter(grp.hist, k, grp.values, 0)
        env = self.sim.env
        if k < self.steps:
            events.Signal(env, self.period, _step(k + 1), (grp, gen, k + 1), self._relax)
        else:
            events.Signal(env, 0.0, _step(self.steps + 1), (grp, gen), self._record)

    def _record(self, event):
        grp, gen = event._value
        if gen != grp.relax_gen:
            return
        self._fill(grp, _step(self.steps + 1))
        e = map_error(grp.kind, grp.values, potential(grp.P, grp.H), grp.lp, grp.frozen_action)
        traces.record(grp, e, grp.H, self.sim.env.now)

    # ---------------------------------------------------------------- checkpoints
    _STATE = ("T", "K", "S", "V", "A", "head", "count", "WT", "WK", "WS", "WP", "whead", "wcount")

    def state(self) -> dict:
        return {"serial": self.serial, "wm": list(self.wm), **{a: getattr(self, a) for a in self._STATE}}

    def restore(self, state: dict) -> None:
        self.serial, self.wm = state["serial"], tuple(state["wm"])
        for a in self._STATE:
            setattr(self, a, np.array(state[a]))


def make_relaxation(sim, mode: str, steps: int, step_size: float, period: float):
    """The relaxation of a simulation: read from histories (``history``, the engine's) or sent as
    messages (``events``, the test oracle)."""
    cls = {"history": HistoryRelaxation, "events": EventRelaxation}[mode]
    return cls(sim, steps, step_size, period)
