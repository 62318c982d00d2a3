"""The relaxation's calls by address: the tables always name the arrays in use.

``relaxation_tables`` passes the relaxation loop and the Gaussian draw tables of addresses instead
of their arrays. A table that named a replaced array would read freed or stale memory, so the
check here is that, after a run under delays in which the histories and what lands grew and the
groups' arrays became views of the loop's buffers, every row of the tables in use is the address
and shape of the array it stands for now; and that a group's table is made again when one of its
arrays is replaced. The oracle is NumPy's own ``ctypes.data`` and ``shape``.
"""

import numpy as np
import pytest

from asyncneurons.engine.history_kernels import array_addresses, checked_addresses
from asyncneurons.engine.relaxation_tables import DRAW_ROWS, LOOP_ROWS
from asyncneurons.engine.simulation import Simulation

from test_map_delays import CLOCK, MAP, UNIFORM


def _rows(arrays):
    return [[a.ctypes.data, *a.shape, *(1,) * (3 - a.ndim)] for a in arrays]


def test_a_table_holds_each_arrays_address_and_shape_up_to_three_axes():
    arrays = [np.zeros(3), np.zeros((2, 5), dtype=np.int64), np.zeros((2, 3, 4)), np.zeros(4, dtype=np.bool_)]
    assert array_addresses(arrays).tolist() == _rows(arrays)
    with pytest.raises(ValueError, match="array 1"):
        checked_addresses(arrays, ["f1", "f2", "f3", "b1"], "a test")  # an int64 array where float64 is expected


def test_the_tables_in_use_name_the_arrays_in_use_after_growth(scenario):
    long = {"dist": "uniform", "low": 0.0, "high": 40.0}  # values in flight for long: more entries kept
    s = scenario(**MAP, timing={"reward_delay": 10.0, "synapse_delay": long, "retro_delay": long,
                                "relax_period": 0.25}, env=CLOCK)
    sim = Simulation(s, max_ticks=30).run()
    relax = sim.relaxation
    assert relax.T.shape[1] > 16 and relax.LA.shape[1] > 64  # the histories and what lands grew during the run
    landed, known = relax.landed, relax.landed[6]
    arrays = [*relax._groups, relax.next_t, relax.next_k, relax.next_seq, relax.seq, *relax.hist_arrays(),
              *relax.weight_arrays(), relax.rid, *landed[2], *landed[3], *landed[4], *known, relax.ncols,
              *relax._finished, relax._due_heap, *relax._scratch, *relax._draw_scratch]
    assert len(arrays) == len(LOOP_ROWS)
    assert relax._table().tolist() == _rows(arrays)
    for grp in sim.groups:
        if grp.kind.name != "gaussian":
            assert relax._draw_table(grp) is None
            continue
        values, mu, pot, _ = grp.map_drawn
        mine = [grp.P, grp.H, grp.T, grp.keys1, grp.keys2, grp.counters, *grp.map_fill[:6], *grp.map_fill[6],
                grp.hist, values, mu, pot]
        assert len(mine) == len(DRAW_ROWS)
        assert relax._draw_table(grp).tolist() == _rows(mine)


def test_a_groups_table_is_made_again_when_its_arrays_are_replaced(scenario):
    s = scenario(**MAP, timing={"synapse_delay": UNIFORM, "retro_delay": UNIFORM, "relax_period": 0.25}, env=CLOCK)
    sim = Simulation(s, max_ticks=5).run()
    relax = sim.relaxation
    grp = next(g for g in sim.groups if g.kind.name == "gaussian")
    before = relax._draw_table(grp)
    assert relax._draw_table(grp) is before  # kept while its arrays are
    grp.H = grp.H.copy()
    after = relax._draw_table(grp)
    assert after is not before and after[1, 0] == grp.H.ctypes.data
