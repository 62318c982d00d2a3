"""A MAP Propagation hidden unit's firing under delays in one compiled call.

Under per-synapse delays every hidden unit of the published MAP networks is a group of its own
whose inputs arrive lazily (:mod:`asyncneurons.engine.transmission`) and whose relaxation is read
from histories (:class:`~asyncneurons.engine.relaxation.HistoryRelaxation`). Its firing is then a
fixed sequence of array updates, each already compiled but called one by one from Python, some
twenty Python calls per sample and about a hundred samples per environment step of the CartPole
network:

1. the Gaussian draw from what the unit holds, entered in the relaxation's history
   (:func:`~asyncneurons.engine.relaxation_kernels.gaussian_draw_into`);
2. its first relaxation step due one period later, starting from the sample
   (:meth:`HistoryRelaxation._due <asyncneurons.engine.relaxation.HistoryRelaxation._due>`: its
   relaxed values ``map_h ← h``; ``next_t, next_k, next_seq ← t + period, 1, seq``; ``seq += 1``);
3. its counters of keyed draws, one up;
4. the next wave it waits for: on each input synapse the first arrival of a newer wave
   (:func:`~asyncneurons.engine.transmission_kernels.next_wave`);
5. its sample posted in its sender history, marking the receivers it completes
   (:func:`~asyncneurons.engine.transmission_kernels.post_one`).

:func:`fire_one_at` makes them one call, in that order, on the same arrays, passed as tables of
addresses (:func:`~asyncneurons.engine.history_kernels.checked_addresses`): the arrays and the
arithmetic are those of the calls it replaces, so the numbers are the same bits. What the
simulation's event queue must see (the relaxation's wake, the timers of completed waves) stays
in Python, scheduled in the order the separate calls scheduled it
(:meth:`Simulation.fire <asyncneurons.engine.simulation.Simulation.fire>`). :func:`arrived_at`
is the unit's timer: what has arrived is applied
(:func:`~asyncneurons.engine.transmission_kernels.apply_arrived`) and it answers whether every
synapse now holds a wave newer than the one last served (``T.min() > last_wave``).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from asyncneurons.learning import kernel_cache  # noqa: F401  (stamps the kernel cache before any @njit)

from asyncneurons.engine import events
from asyncneurons.engine.history_kernels import _b1_1, _f8_1, _f8_2, _i8_1, _i8_2, checked_addresses
from asyncneurons.engine.relaxation_kernels import COS, EXP, LOG1P, OK
from asyncneurons.engine.relaxation_tables import L_DUE, gaussian_draw_at
from asyncneurons.engine.transmission_kernels import apply_arrived, next_wave, post_one
from asyncneurons.learning.rules.map_prop import MapProp

# The transmission's arrays (:class:`~asyncneurons.engine.transmission.Transmission`): its sender
# histories HT, HV, HW, HN, head, max_delay; per synapse e_sat, e_done; per group last_wave, waits,
# missing, latest, armed, complete.
SEND_ROWS = ("f2 f2 i2 i2 i1 f1" " b1 i1" " i1 b1 i1 f1 b1 i1").split()
S_HT, S_HV, S_HW, S_HN, S_HEAD, S_MAX_DELAY, S_SAT, S_DONE, S_LAST_WAVE, S_WAITS, S_MISSING, S_LATEST, S_ARMED, \
    S_COMPLETE = range(14)

# A unit's own: its input synapses (senders, delays, synapse indices, rows, columns), what it holds
# (H, T), its output synapses (indices, receiving groups, delays) and its relaxed values.
UNIT_ROWS = ("i1 f1 i1 i1 i1" " f2 i2" " i1 i1 f1" " f1").split()
U_SRC, U_D, U_EDGES, U_ROWS, U_COLS, U_H, U_T, U_OUT, U_TGT, U_OUT_D, U_RELAXED = range(11)


def send_table(tr) -> np.ndarray:
    """The table of a transmission's arrays (:data:`SEND_ROWS`)."""
    return checked_addresses(send_arrays(tr), SEND_ROWS, "the transmission")


def send_arrays(tr) -> list:
    return [tr.HT, tr.HV, tr.HW, tr.HN, tr.head, tr.max_delay, tr.e_sat, tr.e_done, tr.last_wave, tr.waits,
            tr.missing, tr.latest, tr.armed, tr.complete]


def unit_arrays(grp) -> list:
    return [grp.in_src, grp.in_d, grp.in_edges, grp.in_rows, grp.in_cols, grp.H, grp.T, grp.out_edges, grp.out_tgt,
            grp.out_delay, grp.map_h]


def unit_table(grp):
    """The table of a one-unit group's arrays (:data:`UNIT_ROWS`), kept on the group as
    ``map_unit`` with the arrays that can be replaced (H, T and its relaxed values: the
    relaxation's buffers, a restored checkpoint) and made again when one of them is."""
    utab = kept_unit_table(grp)
    if utab is None:
        utab = checked_addresses(unit_arrays(grp), UNIT_ROWS, f"unit {grp.names[0]}")
        grp.map_unit = (utab, grp.H, grp.T, grp.map_h)
    return utab


def kept_unit_table(grp):
    """The group's :func:`unit_table` when it has one and it is current, else None."""
    kept = grp.__dict__.get("map_unit")
    if kept is None or kept[1] is not grp.H or kept[2] is not grp.T or kept[3] is not grp.map_h:
        return None
    return kept[0]


def fires_in_one_call(sim, grp) -> bool:
    """Whether the group's firing can be :func:`fire_one`: a hidden group of one Gaussian unit
    under MAP Propagation relaxing from histories, its inputs lazy and without jitter, sending to
    lazy receivers only, nothing recording events, one run. Kept on the group as ``map_fires``."""
    rx, tr = sim.relaxation, sim.transmission
    ok = bool(sim._map_hist and getattr(rx, "reads_histories", False) and rx.steps > 0
              and grp is not sim.input_group and grp.role != "output" and grp.size == 1 and grp.lazy
              and not grp.plan and tr.jitter is None and sim.windows is None and sim.instant is None
              and type(sim.rule).on_sample is MapProp.on_sample and not sim.rule.scores_samples
              and grp.kind.name == "gaussian" and grp.counters.shape == (1,) and grp.P.ndim == 2)
    grp.map_fires = ok
    return ok


def fire_one(sim, grp) -> bool:
    """:meth:`Simulation.fire <asyncneurons.engine.simulation.Simulation.fire>` of a group that
    :func:`fires_in_one_call`, its array updates in :func:`fire_one_at`: the same arrays written
    in the same order, then what the simulation's queue must see in the order the separate calls
    scheduled it (the relaxation's wake, the group's own next timer, the timers of the receivers
    its post completes). False, and nothing done, when the group's draw is not compiled."""
    rx, tr = sim.relaxation, sim.transmission
    now = sim.env.now
    tr.flush(grp)
    tab = rx._tab if rx._tab is not None else rx._table()  # (first: it may rebind the group's arrays)
    gtab = rx._draw_table(grp)
    if gtab is None:
        return False
    values, mu, _, sd = grp.map_drawn
    t_due = now + rx.period
    wave, code, short, n = fire_one_at(tab, gtab, tr.send_table(), unit_table(grp), sd, now, events.FIRE + grp.rank,
                                       rx._wm(now), EXP, LOG1P, COS, rx.serial, rx.max_fwd, rx.max_back,
                                       rx.landed_on, t_due, grp.relax_index, grp.gid, grp.dense[0], tr.serial)
    if code == OK:
        rx.serial += 1
    else:  # drawn, not entered: grow the history and enter it, then the rest
        rx._make_room(code)
        rx._enter(grp.hist, 0, values, 0)
        tab = rx._tab if rx._tab is not None else rx._table()  # (the tables again: arrays may have been replaced)
        gtab = rx._draw_table(grp)
        short, n = after_draw_at(tab, gtab, tr.send_table(), unit_table(grp), now, wave, t_due, grp.relax_index,
                                 grp.gid, grp.dense[0], tr.serial)
    wave = int(wave)
    grp.aux, grp.last_fire, grp.frozen_action = mu, now, None
    grp.relax_gen += 1
    grp.values = grp.map_h  # its steps write there (HistoryRelaxation._due)
    rx.due_scheduled(t_due, 1)
    grp.last_wave = wave
    if short >= 0:  # it waits for waves (Transmission.after_fire)
        grp.wake_token += 1  # any armed timer belongs to the wave just served
        if short == 0:
            tr._arm(grp)
    if n < 0:  # the histories need room: the post as Transmission.post makes it
        tr.post(grp, values, wave)
        return True
    tr.serial += 1
    if n:
        by_gid = tr.by_gid
        for gid in tr.complete[:n].tolist():
            tr._arm(by_gid[gid])
    return True


@njit(cache=True)
def arrived_at(stab, utab, now, last_wave):  # pragma: no cover - compiled
    """The unit's timer: :func:`~asyncneurons.engine.transmission_kernels.apply_arrived` on its
    synapses, then whether the least wave it holds exceeds ``last_wave``."""
    H, T = _f8_2(utab, U_H), _i8_2(utab, U_T)
    apply_arrived(_f8_2(stab, S_HT), _f8_2(stab, S_HV), _i8_2(stab, S_HW), _i8_2(stab, S_HN), _i8_1(utab, U_SRC),
                  _f8_1(utab, U_D), _i8_1(utab, U_EDGES), _i8_1(utab, U_ROWS), _i8_1(utab, U_COLS),
                  _i8_1(stab, S_DONE), H, T, now)
    least = T[0, 0]
    for r in range(T.shape[0]):
        for c in range(T.shape[1]):
            if T[r, c] < least:
                least = T[r, c]
    return least > last_wave


@njit(cache=True)
def after_draw_at(tab, gtab, stab, utab, now, wave, t_due, due, gid, dense, serial):  # pragma: no cover - compiled
    """Steps 2 to 5 of the firing (the module's list) at ``now``, after the draw (its values in the
    group's table ``gtab``, :data:`~asyncneurons.engine.relaxation_tables.DRAW_ROWS`) holding the
    oldest wave ``wave``: the first relaxation step at ``t_due`` (row ``due`` of the steps due), the
    counters, the next wave of group ``gid`` (when it waits for waves) and the post as row
    ``dense`` of the histories, send number ``serial``. Returns (the synapses the next wave still
    misses, or −1 when the group does not wait for waves; post_one's count: −1 when the histories
    need room, the post not made)."""
    values, counters = _f8_1(gtab, 18), _i8_1(gtab, 5)
    relaxed = _f8_1(utab, U_RELAXED)
    for r in range(relaxed.size):
        relaxed[r] = values[r]
    d = L_DUE
    next_t, next_k, next_seq, seq = _f8_1(tab, d), _i8_1(tab, d + 1), _i8_1(tab, d + 2), _i8_1(tab, d + 3)
    next_t[due], next_k[due], next_seq[due] = t_due, 1, seq[0]
    seq[0] += 1
    for r in range(counters.size):
        counters[r] += 1
    HT, HW, sat = _f8_2(stab, S_HT), _i8_2(stab, S_HW), _b1_1(stab, S_SAT)
    last, waits, missing, latest = (_i8_1(stab, S_LAST_WAVE), _b1_1(stab, S_WAITS), _i8_1(stab, S_MISSING),
                                    _f8_1(stab, S_LATEST))
    short = -1
    if waits[gid]:
        last[gid] = wave
        short, latest[gid] = next_wave(HT, HW, _i8_1(utab, U_SRC), _f8_1(utab, U_D), _i8_1(utab, U_EDGES), wave, sat)
        missing[gid] = short
    n = post_one(HT, _f8_2(stab, S_HV), HW, _i8_2(stab, S_HN), _i8_1(stab, S_HEAD), _f8_1(stab, S_MAX_DELAY), dense,
                 now, values[0], wave, serial, False, _i8_1(utab, U_OUT), _i8_1(utab, U_TGT), _f8_1(utab, U_OUT_D),
                 sat, last, waits, missing, latest, _b1_1(stab, S_ARMED), _i8_1(stab, S_COMPLETE))
    return short, n


@njit(cache=True)
def fire_one_at(tab, gtab, stab, utab, sd, now, pr, wm, fexp, flog1p, fcos, rserial, max_fwd, max_back, landed_on,
                t_due, due, gid, dense, tserial):  # pragma: no cover - compiled
    """The whole firing (the module's list) of a one-unit Gaussian group at ``now`` (class ``pr``):
    :func:`~asyncneurons.engine.relaxation_tables.gaussian_draw_at` (relaxation tables ``tab`` and
    ``gtab``, send number ``rserial`` in the relaxation's history), then, when the draw entered
    the history, :func:`after_draw_at`. Returns (the oldest wave held, the draw's code; when it is
    :data:`~asyncneurons.engine.relaxation_kernels.OK`, after_draw_at's two numbers, else −1, −1
    and nothing after the draw done)."""
    wave, code = gaussian_draw_at(tab, gtab, sd, now, pr, wm, fexp, flog1p, fcos, rserial, max_fwd, max_back,
                                  landed_on)
    if code != OK:
        return wave, code, -1, -1
    short, n = after_draw_at(tab, gtab, stab, utab, now, wave, t_due, due, gid, dense, tserial)
    return wave, code, short, n


__all__ = ["SEND_ROWS", "UNIT_ROWS", "after_draw_at", "arrived_at", "fire_one", "fire_one_at", "fires_in_one_call",
           "kept_unit_table", "send_table", "unit_table"]
