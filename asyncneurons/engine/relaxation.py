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
(the steps due before the next other event run in one compiled loop); :class:`EventRelaxation`,
the test oracle, sends every relaxed value and every error term as an event. They give the same bits
(``tests/test_map_delays.py``).
"""

from __future__ import annotations

import math

import numpy as np

from asyncneurons.engine import events
from asyncneurons.learning import traces
from asyncneurons.learning.optim import adam_constants
from asyncneurons.engine import relaxation_kernels as kern
from asyncneurons.engine.history_kernels import checked_addresses
from asyncneurons.engine.relaxation_tables import LOOP_ROWS, draw_table, gaussian_draw_at, relax_until_at
from asyncneurons.learning.kernels import potential, softplus, sum_by_sender
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
    """The relaxation read from histories: no messages, and no event per relaxation step.

    Every group's samples and relaxed values (and the observations) enter a history with their
    send time and step; every group's weight rows enter one when it learns; every unit that some
    group reads keeps what lands on it, in landing order. A relaxing group reads what it holds on
    each synapse, and each downstream unit's error term as it stands when it reaches the group:
    computed from that unit's value, held inputs and weights as of its retrograde delay earlier
    (:mod:`asyncneurons.engine.relaxation_kernels`). The steps due before the next other event of the
    simulation run in one compiled loop, in time order (:meth:`_drive`, woken by an event at the
    next step due); each group's trace records after its last step, in that loop when nothing
    queued comes first (a Gaussian group, :meth:`_records_in_loop`), else at an event. The numbers
    are those of :class:`EventRelaxation` (a test holds the two equal).
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
        self.total, self.wtotal = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64)  # entries ever made
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
                            np.array([k[1] for k in looks], dtype=float), np.zeros(len(looks)),
                            kern.lookups(len(looks)))
            grp.map_plan = self._plan(grp, dense, where) if grp.role != "output" else None
            if grp.map_plan is not None:
                grp.map_step = grp.map_plan["step"]
        # the steps due: group i of ``relaxing`` makes step next_k[i] at next_t[i] (inf: none)
        self.relaxing = [grp for grp in sim.groups if grp.map_plan is not None]
        for i, grp in enumerate(self.relaxing):
            grp.relax_index = i
            grp.map_h, grp.map_new = np.zeros(grp.size), np.empty(grp.size)  # its values while it relaxes
        m = len(self.relaxing)
        self.next_t, self.next_k = np.full(m, math.inf), np.zeros(m, dtype=np.int64)
        self.next_seq, self.seq = np.zeros(m, dtype=np.int64), np.zeros(1, dtype=np.int64)
        self.token, self.wake_at, self._groups = 0, None, None
        self._learning = {}  # the arrays of groups that learn together (:meth:`_learners`)
        self._draw_scratch = None  # the working arrays of the draws (:meth:`before_fire`, made by :meth:`_table`)
        self._build_landed(n, C)
        self._tie()

    def _build_landed(self, n: int, C: int) -> None:
        """What lands on each unit someone reads (:func:`relaxation_kernels.extend_landed`): a heap
        per read unit over its synapses with values in flight, each synapse's cursor in its
        sender's history, and the landed points. With no delay anywhere every landing is at the
        reader's instant, where order decides: the lookups input by input answer, and nothing is
        kept."""
        read = sorted({int(u) for grp in self.relaxing for u in grp.map_step[0][1]})
        self.rid = np.full(n, -1, dtype=np.int64)
        self.rid[read] = np.arange(len(read))
        self.landed_on = bool(read) and (self.max_fwd > 0 or self.max_back > 0)
        out = [[] for _ in range(n)]
        for u in read:
            for e in range(self.in_ptr[u], self.in_ptr[u + 1]):
                out[self.in_src[e]].append((self.rid[u], e, self.in_d[e]))
        self.out_ptr = np.cumsum([0] + [len(o) for o in out]).astype(np.int64)
        self.out_r = np.array([r for o in out for r, _, _ in o], dtype=np.int64)
        self.out_e = np.array([e for o in out for _, e, _ in o], dtype=np.int64)
        self.out_d = np.array([d for o in out for *_, d in o], dtype=float)
        R, L = max(len(read), 1), 64
        Q = max([int(self.in_ptr[u + 1] - self.in_ptr[u]) for u in read] + [1])  # a heap holds each synapse once
        self.QA, self.QS = np.zeros((R, Q)), np.zeros((R, Q), dtype=np.int64)
        self.QE, self.qsize = np.zeros((R, Q), dtype=np.int64), np.zeros(R, dtype=np.int64)
        self.nxt = np.zeros(len(self.in_src), dtype=np.int64)
        self.LA, self.LC, self.LV = np.zeros((R, L)), np.zeros((R, L), dtype=np.int64), np.zeros((R, L))
        self.LX = np.zeros((R, L // kern.BLOCK, C))
        self.lcount, self.ltotal, self.front = np.zeros(R, dtype=np.int64), np.zeros(R, dtype=np.int64), np.zeros((R, C))
        self._forget_known()

    def _forget_known(self) -> None:
        """The pre-activations read units had after their landed points, as readers computed them
        (:func:`relaxation_kernels.read_senders`): per slot of ``LA``, the point's number, the
        serial of the weights and the pre-activation (none yet: a pure function of the two,
        computed again when needed); and each read unit's eight lanes of the sum of its products
        with its newest weights and the serial of those weights (none yet: made again from its
        inputs at its next landing, :func:`relaxation_kernels.extend_landed`)."""
        R, L = self.LA.shape
        self.k_point, self.k_weights = np.full((R, L), -1, dtype=np.int64), np.full((R, L), -1, dtype=np.int64)
        self.k_pot = np.zeros((R, L))
        self.k_lanes, self.k_lanes_w = np.zeros((R, 8)), np.full(R, -1, dtype=np.int64)

    def _tie(self) -> None:
        """The tuples of what lands that the kernels take (again after an array is replaced): all of
        it for the reads, and what a new entry touches (:func:`relaxation_kernels.posting`); the
        table of addresses is built again at its next use (:meth:`_table`)."""
        self._tab = None
        self.landed = (self.landed_on, self.rid,
                       (self.QA, self.QS, self.QE, self.qsize, self.nxt, self.in_src, self.in_col, self.in_d),
                       (self.LA, self.LC, self.LV, self.LX, self.lcount, self.ltotal, self.front),
                       (self.out_ptr, self.out_r, self.out_e, self.out_d), self.max_back,
                       (self.k_point, self.k_weights, self.k_pot, self.k_lanes, self.k_lanes_w))
        self.posting = (self.landed_on, (self.QA, self.QS, self.QE, self.qsize, self.nxt),
                        (self.out_ptr, self.out_r, self.out_e, self.out_d))

    def _make_room(self, code: int) -> None:
        """Grow what a kernel found full."""
        if code == kern.HISTORY_FULL:
            self._grow()
        elif code == kern.LANDED_FULL:  # point a stays in slot a mod L, its block's copy in a / BLOCK mod L / BLOCK
            (R, L), B = self.LA.shape, kern.BLOCK
            old = (self.LA, self.LC, self.LV, self.LX)
            self.LA, self.LC, self.LV = np.zeros((R, 2 * L)), np.zeros((R, 2 * L), dtype=np.int64), np.zeros((R, 2 * L))
            self.LX = np.zeros((R, 2 * L // B, self.LX.shape[2]))
            for r in range(R):
                first = self.ltotal[r] - self.lcount[r]
                a = np.arange(first - first % B, self.ltotal[r])
                for new, was in zip((self.LA, self.LC, self.LV), old):
                    new[r, a % (2 * L)] = was[r, a % L]
                blocks = np.unique(a // B)
                self.LX[r, blocks % (2 * L // B)] = old[3][r, blocks % (L // B)]
            self._forget_known()
        else:
            raise AssertionError(f"unknown kernel status {code}")
        self._tie()

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
        for q, (sg, rows, dr) in enumerate(queries):
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
                "e_rrow": np.array(e_rrow, dtype=np.int64), "n_senders": len(senders),
                "x_ptr": np.array(x_ptr, dtype=np.int64), "x_col": np.array(x_col, dtype=np.int64),
                "x_look": np.array(x_look, dtype=np.int64), "l_src": np.array([k[0] for k in looks], dtype=np.int64),
                "l_d1": np.array([k[1] for k in looks], dtype=float), "l_d2": np.array([k[2] for k in looks], dtype=float)}
        q_kind, q_var, q_temp = np.zeros(len(queries), dtype=np.int64), np.ones(len(queries)), np.ones(len(queries))
        for q, (sg, rows, dr) in enumerate(queries):
            if sg.kind.name not in kern.KIND_CODES:
                raise ValueError(f"MAP Propagation has no error term for {sg.kind.name} units")
            q_kind[q], q_var[q], q_temp[q] = kern.KIND_CODES[sg.kind.name], sg.lp.variance, sg.lp.temperature
        cursors = (kern.lookups(len(looks)), np.zeros(len(q_units), dtype=np.int64),
                   np.zeros(len(q_units), dtype=np.int64),
                   np.zeros(len(q_units), dtype=np.int64))  # of the lookups, the values, the weights, the landed
        plan["step"] = ((plan["q_ptr"], plan["q_units"], plan["q_dr"], plan["e_q"], plan["e_qu"], plan["e_col"],
                         plan["e_zrow"], plan["e_rrow"], plan["x_ptr"], plan["x_col"], plan["x_look"], plan["l_src"],
                         plan["l_d1"], plan["l_d2"]), q_kind, q_var, q_temp, max(len(senders), 1), cursors)
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
        self._tab = None  # (:meth:`_table`)

    def _enter(self, units, k: int, values, action: int) -> None:
        now = self.sim.env.now
        values = np.ascontiguousarray(values, dtype=np.float64)
        while (code := kern.append(self.T, self.K, self.S, self.V, self.A, self.head, self.count, self.total, units,
                                   now, k, values, action, self.serial, self.max_fwd, self.max_back, self._wm(now),
                                   self.posting)) != kern.OK:
            self._make_room(code)
        self.serial += 1

    def _snapshot(self, grp, t: float) -> None:
        while not kern.append_weights(self.WT, self.WS, self.WP, self.whead, self.wcount, self.wtotal, grp.hist, t,
                                      np.ascontiguousarray(grp.P), self.serial, self.max_back, self._wm(t)):
            self._grow_weights()
        self.serial += 1

    def _wm(self, tau: float) -> int:
        return self.wm[1] if self.wm[0] == tau else -1

    def _fill(self, grp, pr: int) -> None:
        tau = self.sim.env.now
        kern.fill_inputs(grp.H, *grp.map_fill, self.T, self.K, self.S, self.V, self.head, self.count, self.total,
                         tau, pr, self._wm(tau))

    # ---------------------------------------------------------------- hooks
    def inputs_sent(self, values) -> None:
        """The environment emitted an observation (at its step: everything due at this instant
        before it has happened)."""
        self.wm = (self.sim.env.now, self.serial)
        self._enter(self.sim.input_group.hist, 0, values, 0)

    def before_fire(self, grp):
        """A group is about to sample: let it hold the relaxed values that have reached it. A group
        of Gaussian units samples in the same compiled call, and its sample enters the history
        there (:func:`relaxation_kernels.gaussian_draw_into`, by address: :func:`relaxation_tables.gaussian_draw_at`,
        into arrays the group keeps, its ``map_drawn``: a draw overwrites the one before): returned
        as (values, means, pre-activations, the oldest wave it holds); any other group samples in
        the engine (None)."""
        tau, pr = self.sim.env.now, events.FIRE + grp.rank
        tab = self._tab if self._tab is not None else self._table()  # (first: it may rebind the group's arrays)
        gtab = self._draw_table(grp)
        if gtab is not None:
            values, mu, pot, sd = grp.map_drawn
            wave, code = gaussian_draw_at(tab, gtab, sd, tau, pr, self._wm(tau), kern.EXP, kern.LOG1P, kern.COS,
                                          self.serial, self.max_fwd, self.max_back, self.landed_on)
            if grp.plan:  # eager receivers hold the values sent until they land: a copy of their own
                values = values.copy()
            if code == kern.OK:
                self.serial += 1
            else:  # drawn, not entered: grow the history and enter it
                self._make_room(code)
                self._enter(grp.hist, 0, values, 0)
            grp.map_entered = True  # (:meth:`start`)
            return values, mu, pot, int(wave)
        self._fill(grp, pr)
        return None

    def _draw_table(self, grp):
        """The table of a group's arrays that :meth:`before_fire` draws with (:func:`relaxation_tables.draw_table`),
        or None when the group samples in the engine (not Gaussian units, or arrays the compiled
        draw does not take). Kept on the group as ``map_draw`` with the arrays it was made from,
        and made again when one of them has been replaced (the relaxation's buffers, a restored
        state)."""
        kept = grp.__dict__.get("map_draw")
        if (kept is not None and kept[1] is grp.P and kept[2] is grp.H and kept[3] is grp.T and kept[4] is grp.keys1
                and kept[5] is grp.keys2 and kept[6] is grp.counters and kept[7] is grp.map_fill):
            return kept[0]
        gtab = None
        if (grp.kind.name == "gaussian" and grp.P.ndim == 2 and grp.P.flags.c_contiguous and grp.H.flags.c_contiguous
                and grp.counters.dtype == np.int64 and grp.counters.shape == (grp.size,)):
            if grp.__dict__.get("map_drawn") is None:  # where its draws are written
                grp.map_drawn = (np.empty(grp.size), np.empty(grp.size), np.empty(grp.size),
                                 float(np.sqrt(grp.lp.variance)))
            gtab = draw_table(grp)
        grp.map_draw = (gtab, grp.P, grp.H, grp.T, grp.keys1, grp.keys2, grp.counters, grp.map_fill)
        return gtab

    def weights_changed(self, grp) -> None:
        self._snapshot(grp, self.sim.env.now)

    def reinforce_groups(self, groups, delta: float, step: int, reset: bool) -> bool:
        """Groups on which one TD error lands, in this order, learn as
        :meth:`~asyncneurons.learning.rules.map_prop.MapProp.on_reward` has each learn (REINFORCE
        with Adam, then :meth:`weights_changed`) and clear their traces when ``reset``, in one
        compiled call (:func:`relaxation_kernels.reinforce_and_snapshot`: the same bits). False,
        and nothing done, when some group's arrays are not single 2-D C-contiguous float64 ones
        or its trace is exponential: then each learns alone."""
        if not groups:
            return True
        arrays = self._learners(groups)
        if arrays is None:
            return False
        sim, n = self.sim, len(groups)
        rates, scalars, lrs, adam = {}, {}, [], []
        for grp in groups:
            grp.t = t = grp.t + 1
            lr = rates.get(grp.layer)
            if lr is None:
                lr = rates[grp.layer] = sim.lr(grp.layer, step)
            c = scalars.get(t)
            if c is None:
                c = scalars[t] = adam_constants(sim.adam, t)
            lrs.append(lr)
            adam.append(c)
        lrs, adam = np.array(lrs, dtype=np.float64), np.array(adam, dtype=np.float64)  # ``correct`` as 1.0 or 0.0
        now = sim.env.now
        start, reinforced = 0, False
        while True:
            weights = (self.WT, self.WS, self.WP, self.whead, self.wcount, self.wtotal)
            done = kern.reinforce_and_snapshot(*arrays[:5], float(delta), lrs, adam, bool(reset), start, reinforced,
                                               weights, now, self.serial, self.max_back, self._wm(now), *arrays[5:])
            self.serial += done
            start += done
            if start == n:
                return True
            self._grow_weights()
            reinforced = True

    def _learners(self, groups):
        """The arrays :meth:`reinforce_groups` passes for ``groups`` (their weights, Adam moments,
        traces and units, and scratch), kept while the groups keep those arrays; None when some
        group cannot learn in that call."""
        key = tuple(groups)
        kept = self._learning.get(key)
        if kept is not None and all(P is grp.P and M is grp.M and V is grp.V and E is grp.E
                                    for grp, P, M, V, E in zip(groups, *kept[:4])):
            return kept
        for grp in groups:
            P = grp.P
            if (P.ndim != 2 or getattr(grp, "tau", None) is not None
                    or not all(a.dtype == np.float64 and a.flags.c_contiguous and a.shape == P.shape
                               for a in (P, grp.M, grp.V, grp.E))):
                return None
        kept = (tuple(grp.P for grp in groups), tuple(grp.M for grp in groups), tuple(grp.V for grp in groups),
                tuple(grp.E for grp in groups), tuple(grp.hist for grp in groups),
                np.empty(max(grp.P.shape[0] for grp in groups)), np.empty(max(grp.P.size for grp in groups)))
        if len(self._learning) >= 8:  # sets left by stale signals (a group skipped) are not kept for long
            self._learning.clear()
        self._learning[key] = kept
        return kept

    def start(self, grp) -> None:
        """A group has just sampled: enter the sample and schedule its relaxation."""
        grp.relax_gen += 1
        if getattr(grp, "map_entered", False):  # entered as it was drawn (:meth:`before_fire`)
            grp.map_entered = False
        else:
            action = int(grp.frozen_action) if grp.frozen_action is not None and np.ndim(grp.frozen_action) == 0 else 0
            self._enter(grp.hist, 0, grp.values, action)
        env = self.sim.env
        if grp.role == "output" or self.steps == 0:
            events.Signal(env, self.period * self.steps, _step(self.steps + 1), (grp, grp.relax_gen), self._record)
        else:
            self._due(grp, env.now + self.period, 1)

    def _due(self, grp, t: float, k: int) -> None:
        """Group ``grp`` makes step k at t (replacing any step of an earlier sample)."""
        i = grp.relax_index
        grp.map_h[:] = grp.values
        grp.values = grp.map_h  # its steps write there: its values are always the relaxed ones
        self.next_t[i], self.next_k[i], self.next_seq[i] = t, k, self.seq[0]
        self.seq[0] += 1
        self.due_scheduled(t, k)

    def due_scheduled(self, t: float, k: int) -> None:
        """A step k has just been made due at t (:meth:`_due`, or the compiled firing of
        :mod:`asyncneurons.engine.map_fire`): make sure the relaxation wakes for it."""
        if self.wake_at is None:
            self._wake_for_next()
        elif (t, _step(k)) < self.wake_at:  # every other step due comes at or after the wake (:meth:`_drive`)
            self._wake_at(t, _step(k))

    def _wake_at(self, t: float, priority: int) -> None:
        """Schedule the wake of the relaxation at (t, priority), replacing the one pending."""
        self.token += 1
        self.wake_at = (t, priority)
        self.sim.env.schedule_at(events.Signal.__new__(events.Signal), priority, t, self.token, self._wake)

    def _wake_for_next(self) -> None:
        """Make sure an event wakes the relaxation by its next step."""
        t = self.next_t.min() if len(self.next_t) else math.inf
        if t == math.inf:
            return
        best = min((float(t), _step(int(self.next_k[i]))) for i in np.flatnonzero(self.next_t == t))
        if self.wake_at is None or best < self.wake_at:
            self._wake_at(*best)

    def _wake(self, event):
        """Run the relaxation steps due before the next other event (:func:`relax_until`)."""
        if event._value == self.token:
            self.wake_at = None
        self._drive()

    # ---------------------------------------------------------------- the step
    def _build_groups(self) -> None:
        """What the compiled loop takes of each relaxing group (:func:`relaxation_kernels.relax_until`),
        with the arrays its steps work in: every group's parts in three buffers, one per type
        (:func:`relaxation_kernels.group_at`), group after group. The group's own arrays become
        views of the buffers (its weights, inputs, trace, values and the cursors of its reads),
        so that what the engine writes there the loop reads, and the other way round."""
        C = self.WP.shape[2]
        sizes = [kern.scratch_sizes(*grp.P.shape, grp.map_step[0], grp.map_step[4], C, len(grp.map_fill[3]))
                 for grp in self.relaxing]
        self._scratch = kern.relax_scratch(*(max(column) for column in zip(*sizes or [(0,) * 9])))
        parts = [self._parts(grp) for grp in self.relaxing]
        G, K = len(parts), len(kern.GROUP_PARTS)
        SE = np.zeros((2, K, max(G, 1)), dtype=np.int64)
        pieces = {"f": [], "i": [], "b": []}
        ends = {"f": 0, "i": 0, "b": 0}
        for g, group_parts in enumerate(parts):
            for k, (kind, a) in enumerate(zip(kern.GROUP_PARTS, group_parts)):
                a = np.ravel(a)
                if a.dtype != {"f": np.float64, "i": np.int64, "b": np.bool_}[kind]:
                    raise AssertionError(f"part {k} of a relaxing group is {a.dtype}, not {kind}")
                SE[0, k, g], SE[1, k, g] = ends[kind], ends[kind] + a.size
                ends[kind] += a.size
                pieces[kind].append(a)
        F, I, B = (np.concatenate(pieces[kind]) if pieces[kind] else np.zeros(0, dtype)
                   for kind, dtype in (("f", np.float64), ("i", np.int64), ("b", np.bool_)))
        D = np.zeros((max(G, 1), 4), dtype=np.int64)
        for g, grp in enumerate(self.relaxing):
            D[g, :2] = grp.P.shape
            D[g, 2:] = grp.E.shape if self._records_in_loop(grp) else (0, 0)
            self._rebind(grp, [{"f": F, "i": I, "b": B}[kind][SE[0, k, g]:SE[1, k, g]]
                               for k, kind in enumerate(kern.GROUP_PARTS)])
        self._groups = (F, I, B, SE, D)
        m = len(self.relaxing)
        self._finished, self._due_heap = (np.zeros(m, dtype=np.int64), np.zeros(m)), np.zeros(m, dtype=np.int64)
        self._tab = None  # (:meth:`_table`)

    def _table(self) -> np.ndarray:
        """The table of the addresses of the relaxation's arrays (:data:`relaxation_tables.LOOP_ROWS`)
        that :func:`relaxation_tables.relax_until_at` and :func:`relaxation_tables.gaussian_draw_at`
        read: made here when it is missing, with the groups' buffers (:meth:`_build_groups`) and the
        draws' working arrays if they are; forgotten whenever one of its arrays is replaced
        (:meth:`_tie`, after the histories or what lands grow or are restored; :meth:`_grow_weights`;
        :meth:`_build_groups`)."""
        if self._groups is None:
            self._build_groups()
        if self._draw_scratch is None:
            shapes = [(*g.P.shape, len(g.map_fill[3])) for g in self.sim.groups]
            self._draw_scratch = kern.draw_scratch(*(max(column) for column in zip(*shapes)))
        landed, known = self.landed, self.landed[6]
        arrays = [*self._groups, self.next_t, self.next_k, self.next_seq, self.seq, *self.hist_arrays(),
                  *self.weight_arrays(), self.rid, *landed[2], *landed[3], *landed[4], *known, self.ncols,
                  *self._finished, self._due_heap, *self._scratch, *self._draw_scratch]
        self._tab = checked_addresses(arrays, LOOP_ROWS, "the relaxation")
        return self._tab

    def _parts(self, grp) -> list:
        """A relaxing group's parts, in the order of :data:`relaxation_kernels.GROUP_PARTS`."""
        plan, q_kind, q_var, q_temp, n_senders, (looks, v_cur, w_cur, r_cur) = grp.map_step
        here = self._records_in_loop(grp)
        return [grp.P, grp.H, grp.map_h, grp.map_new, np.array([grp.lp.variance], dtype=float),
                np.array([self.step_size * grp.lp.variance], dtype=float), grp.hist, *grp.map_fill[:6],
                *grp.map_fill[6], *plan, q_kind, q_var, q_temp, np.array([n_senders], dtype=np.int64), *looks, v_cur,
                w_cur, r_cur, grp.E if here else np.zeros(0), np.array([float(grp.decay)]), np.array([here]),
                np.empty(grp.size)]

    @staticmethod
    def _rebind(grp, views: list) -> None:
        """Make the group's arrays the views ``views`` of the loop's buffers (:meth:`_build_groups`)."""
        m, n = grp.P.shape
        if grp.values is grp.map_h:  # its values are the array its steps write (:meth:`_due`)
            grp.values = views[2]
        grp.P, grp.H, grp.map_h, grp.map_new = views[0].reshape(m, n), views[1].reshape(m, n), views[2], views[3]
        grp.map_fill = (*views[7:13], tuple(views[13:18]))
        plan, q_kind, q_var, q_temp, n_senders, _ = grp.map_step
        grp.map_step = (tuple(views[18:32]), views[32], views[33], views[34], n_senders,
                        (tuple(views[36:41]), views[41], views[42], views[43]))
        if views[44].size:
            grp.E = views[44].reshape(grp.E.shape)

    @staticmethod
    def _records_in_loop(grp) -> bool:
        """Whether the compiled loop records the group's trace itself (:func:`relaxation_kernels.record_trace`):
        Gaussian units whose traces decay by λγ per record, in the arrays the compiled
        :func:`asyncneurons.learning.traces.record` takes; any other records at an event (:meth:`_record`)."""
        arrays = (grp.P, grp.H, grp.E)
        return (grp.kind.name == "gaussian" and getattr(grp, "tau", None) is None and grp.E.shape == grp.H.shape
                and all(a.dtype == np.float64 and a.flags.c_contiguous for a in arrays))

    def _drive(self) -> None:
        """Run every relaxation step due before the next event of the simulation's queue, in time
        order, in one compiled loop; schedule each trace record where a group's last step was."""
        env, last = self.sim.env, _step(self.steps)
        queue, record = env._queue, _step(self.steps + 1)
        while True:
            t_lim, pr_lim = (queue[0][0], queue[0][1]) if queue else (math.inf, 0)
            inclusive = R0 <= pr_lim <= last and (pr_lim - R0) % 4 == 0  # a wake of these steps
            status, self.serial, i, t, first, done = relax_until_at(
                self._tab if self._tab is not None else self._table(), t_lim, pr_lim, inclusive, self.wm[0],
                self.wm[1], self.serial, self.landed_on, kern.EXP, kern.LOG1P, self.max_fwd, self.max_back,
                self.period, self.steps, R0)
            if done > first:  # the records left of the groups that made their last step, in that order
                fin, fin_t = self._finished
                for j in range(first, done):
                    grp = self.relaxing[fin[j]]
                    env.schedule_at(events.Signal.__new__(events.Signal), record, float(fin_t[j]),
                                    (grp, grp.relax_gen), self._record)
            if status == kern.LIMIT:
                break
            self._make_room(status)
        if i >= 0:  # the next step due: wake for it unless a wake comes first (:meth:`_wake_for_next`)
            best = (float(t), _step(int(self.next_k[i])))
            if self.wake_at is None or best < self.wake_at:
                self._wake_at(*best)

    def _relax(self, event):
        """A relaxation step as an earlier version scheduled it (in its checkpoints)."""
        grp, gen, k = event._value
        if gen == grp.relax_gen:
            self._due(grp, self.sim.env.now, k)

    def hist_arrays(self) -> tuple:
        return (self.T, self.K, self.S, self.V, self.A, self.head, self.count, self.total)

    def weight_arrays(self) -> tuple:
        return (self.WT, self.WK, self.WS, self.WP, self.whead, self.wcount, self.wtotal)

    def _record(self, event):
        grp, gen = event._value
        if gen != grp.relax_gen:
            return
        tau = self.sim.env.now
        if grp.map_plan is not None and grp.kind.name == "gaussian":  # fill and error term in one compiled call
            if self._groups is None:
                self._build_groups()
            e = np.empty(grp.size)
            kern.gaussian_record_error(grp.P, grp.H, np.ascontiguousarray(grp.values, dtype=np.float64),
                                       grp.lp.variance, grp.map_fill, self.hist_arrays(), tau,
                                       _step(self.steps + 1), self._wm(tau), kern.EXP, kern.LOG1P,
                                       self._scratch, e)
        else:
            self._fill(grp, _step(self.steps + 1))
            e = map_error(grp.kind, grp.values, potential(grp.P, grp.H), grp.lp, grp.frozen_action)
        traces.record(grp, e, grp.H, tau)

    # ---------------------------------------------------------------- checkpoints
    _STATE = ("T", "K", "S", "V", "A", "head", "count", "total", "WT", "WK", "WS", "WP", "whead", "wcount", "wtotal")
    _LANDED = ("QA", "QS", "QE", "qsize", "nxt", "LA", "LC", "LV", "LX", "lcount", "ltotal", "front")

    _DUE = ("next_t", "next_k", "next_seq", "seq")

    def _queue_from_pending(self, state: dict) -> None:
        """Each synapse's cursor and each read unit's heap of synapses from the pending landings of
        a checkpoint that kept them as copies: a synapse's cursor is at its oldest value pending
        (at the oldest entry its sender keeps, if that one was dropped: see
        :func:`relaxation_kernels.extend_landed`), or after its sender's newest entry if none is."""
        PS, PC, psize = np.asarray(state["PS"]), np.asarray(state["PC"]), np.asarray(state["psize"])
        self.qsize[:] = 0
        D = self.T.shape[1]
        for u in np.flatnonzero(self.rid >= 0):
            r = int(self.rid[u])
            cols, serials = PC[r, :psize[r]], PS[r, :psize[r]]
            for e in range(self.in_ptr[u], self.in_ptr[u + 1]):
                src, tot = int(self.in_src[e]), int(self.total[self.in_src[e]])
                oldest = tot - int(self.count[src])
                pending = serials[cols == self.in_col[e]]
                if pending.size == 0:
                    self.nxt[e] = tot
                    continue
                kept = [i for i in range(oldest, tot) if self.S[src, (self.head[src] - (tot - i)) % D] == pending.min()]
                i = kept[0] if kept else oldest
                self.nxt[e] = i
                slot = (self.head[src] - (tot - i)) % D
                kern.push_synapse((self.QA, self.QS, self.QE, self.qsize), r, self.T[src, slot] + self.in_d[e],
                                  self.S[src, slot], e)

    def state(self) -> dict:
        return {"serial": self.serial, "wm": list(self.wm), "token": self.token,
                "wake_at": None if self.wake_at is None else list(self.wake_at),
                "landed_on": self.landed_on, **{a: getattr(self, a) for a in self._STATE + self._DUE + self._LANDED}}

    def restore(self, state: dict) -> None:
        self.serial, self.wm = state["serial"], tuple(state["wm"])
        state = {"total": state["count"], "wtotal": state["wcount"], **state}  # saved before entries were counted
        for a in self._STATE:
            setattr(self, a, np.array(state[a]))
        if "next_t" in state:  # else its pending steps are events of the checkpoint (``_relax``)
            for a in self._DUE:
                getattr(self, a)[:] = state[a]
            self.token, self.wake_at = state["token"], None if state["wake_at"] is None else tuple(state["wake_at"])
        if "QA" in state:
            for a in self._LANDED:
                setattr(self, a, np.array(state[a]))
            self.landed_on = bool(state["landed_on"])
        elif "lhead" in state:  # saved while read units kept their whole inputs after every landing
            if state["landed_on"]:
                raise ValueError("its read units kept their whole inputs after every landing, under delays; "
                                 "this tree keeps landings by column and value and cannot rebuild them")
            self.landed_on = False  # no delay anywhere: nothing was kept, the lookups answer input by input
            self._queue_from_pending(state)
        elif "LX" in state:  # saved while landings waited as copies in a heap per read unit
            for a in self._LANDED[5:]:
                setattr(self, a, np.array(state[a]))
            self.landed_on = bool(state["landed_on"])
            self._queue_from_pending(state)
        else:  # saved before units kept what lands on them: read input by input
            self.landed_on = False
        self._forget_known()
        self._tie()
        for grp in self.relaxing:  # the groups' arrays are the checkpoint's
            grp.map_h[:] = grp.values
            grp.values = grp.map_h
        self._groups = None
        for grp in self.sim.groups:  # lookups start again from the oldest entry kept
            grp.map_fill = grp.map_fill[:-1] + (kern.lookups(len(grp.map_fill[3])),)
            if grp.map_plan is not None:
                looks, values, weights, landed = grp.map_step[-1]
                grp.map_step = grp.map_step[:-1] + ((kern.lookups(len(looks[0])), np.zeros_like(values),
                                                     np.zeros_like(weights), np.zeros_like(landed)),)


def make_relaxation(sim, mode: str, steps: int, step_size: float, period: float):
    """The relaxation of a simulation: read from histories (``history``, the engine's) or sent as
    messages (``events``, the test oracle)."""
    cls = {"history": HistoryRelaxation, "events": EventRelaxation}[mode]
    return cls(sim, steps, step_size, period)
