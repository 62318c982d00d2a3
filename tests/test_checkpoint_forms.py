"""Checkpoints written by earlier trees resume to the numbers of an uninterrupted run today.

tests/data/map-checkpoint-0328829 holds a checkpoint of a small MAP Propagation run under
per-synapse delays, saved at episode 3 by commit 0328829, when landings pending waited as copies
in a heap per read unit. Today each read unit keeps a heap of its synapses with values in flight
and each synapse's cursor in its sender's history; the copies are turned into cursors when the
checkpoint is restored (:meth:`HistoryRelaxation._queue_from_pending`).
"""

from pathlib import Path

import numpy as np
import pytest
from conftest import stop_at_checkpoint

from asyncneurons.engine import checkpoint
from asyncneurons.engine.simulation import Simulation
from asyncneurons.model.scenario import load_scenario

OLD_MAP = Path(__file__).resolve().parent / "data" / "map-checkpoint-0328829"
# what commit 0328829 printed for the episodes before its checkpoint (write.py)
OLD_EPISODES = [(0, 37.0, 37, 740.0), (1, 33.0, 33, 660.0), (2, 14.0, 14, 280.0)]


def _key(row):
    return row["episode"], row["return"], row["length"], row["sim_time_ms"]


def _relaxation(state, arrays) -> dict:
    """The relaxation's arrays in a loaded checkpoint, by name."""
    return {k: arrays[v["array"]] for k, v in state["relaxation"]["dict"] if isinstance(v, dict) and "array" in v}


@pytest.fixture(scope="module")
def old_map():
    s = load_scenario(OLD_MAP / "scenario.toml")
    rows = []
    whole = Simulation(s, on_episode=rows.append).run()
    return s, whole, rows


def test_the_old_checkpoint_holds_landings_pending_as_copies(old_map):
    s, _, _ = old_map
    relax = _relaxation(*checkpoint.load(OLD_MAP, 0, s))
    assert "QA" not in relax and "nxt" not in relax
    assert relax["psize"].tolist() == [18, 18, 18, 20, 10, 5]


def test_todays_tree_gives_the_old_trees_episodes_before_the_checkpoint(old_map):
    _, _, rows = old_map
    assert [_key(r) for r in rows[:3]] == OLD_EPISODES


def test_a_checkpoint_with_copies_pending_resumes_to_the_uninterrupted_run(old_map):
    s, whole, rows = old_map
    resumed_rows = []
    resumed = Simulation(s, on_episode=resumed_rows.append, resume=checkpoint.load(OLD_MAP, 0, s))
    resumed.run()
    assert [r["episode"] for r in resumed_rows] == [3, 4, 5]
    assert [_key(r) for r in resumed_rows] == [_key(r) for r in rows[3:]]
    for layer, m in whole.layer_matrices().items():
        np.testing.assert_array_equal(resumed.layer_matrices()[layer], m, err_msg=layer)
    for layer, (a, b) in enumerate(zip(resumed.critic.P, whole.critic.P)):
        np.testing.assert_array_equal(a, b, err_msg=f"critic layer {layer}")


def _queued(relax, r):
    """Read unit r's heap as a set of (landing time, serial, synapse): its layout follows the
    order of the pushes, what it pops does not."""
    n = relax.qsize[r]
    return sorted(zip(relax.QA[r, :n].tolist(), relax.QS[r, :n].tolist(), relax.QE[r, :n].tolist()))


def test_the_copies_become_the_cursors_and_heaps_todays_tree_holds_at_that_moment(old_map, tmp_path):
    s, _, _ = old_map
    stop_at_checkpoint(s, tmp_path, 3)
    today = Simulation(s, resume=checkpoint.load(tmp_path, 0, s)).relaxation
    converted = Simulation(s, resume=checkpoint.load(OLD_MAP, 0, s)).relaxation
    assert converted.qsize.tolist() == today.qsize.tolist() and converted.qsize.sum() > 0
    np.testing.assert_array_equal(converted.nxt, today.nxt)
    for r in range(len(today.qsize)):
        assert _queued(converted, r) == _queued(today, r)


# Between commits 0df523e and 8eccf60 a read unit kept its whole inputs after every landing, in a
# ring with its own head (``lhead``), and landings pending waited as copies. At zero delay nothing
# was kept (``landed_on`` false); such a checkpoint resumes, one under delays is refused in a line.
ZERO_DELAY_MAP = ["experiment.episodes=4", "timing.synapse_delay=0.0", "timing.reward_delay=0.0",
                  "network.hidden=[8, 4]", "learning.critic_hidden=[8, 4]"]


def _as_whole_inputs_form(state, arrays, landed_on: bool):
    """``state`` rewritten in the form of 0df523e–8eccf60: no heap of synapses or cursors, no
    landings by column and value; copies pending (none) and a ring head per read unit."""
    relax = dict(state["relaxation"]["dict"])
    rows = arrays[relax["lcount"]["array"]].shape[0]
    for k in ("QA", "QS", "QE", "qsize", "nxt", "LC", "LV"):
        del relax[k]
    extra = {"PA": np.zeros((rows, 1)), "PS": np.zeros((rows, 1), dtype=np.int64),
             "PC": np.zeros((rows, 1), dtype=np.int64), "PV": np.zeros((rows, 1)),
             "psize": np.zeros(rows, dtype=np.int64), "lhead": np.zeros(rows, dtype=np.int64)}
    arrays = dict(arrays)
    for k, a in extra.items():
        arrays[f"old-{k}"] = a
        relax[k] = {"array": f"old-{k}"}
    relax["landed_on"] = landed_on
    return {**state, "relaxation": {"dict": [[k, v] for k, v in relax.items()]}}, arrays


def test_a_zero_delay_checkpoint_of_whole_inputs_resumes_to_the_uninterrupted_run(tmp_path):
    s = load_scenario(Path(__file__).resolve().parents[1] / "scenarios/studies/map-delays.toml", ZERO_DELAY_MAP)
    whole_rows = []
    whole = Simulation(s, on_episode=whole_rows.append).run()
    stop_at_checkpoint(s, tmp_path, 2)
    state, arrays = checkpoint.load(tmp_path, 0, s)
    assert dict(state["relaxation"]["dict"])["landed_on"] is False
    resumed_rows = []
    resumed = Simulation(s, on_episode=resumed_rows.append, resume=_as_whole_inputs_form(state, arrays, False))
    resumed.run()
    assert [r["episode"] for r in resumed_rows] == [2, 3]
    assert [_key(r) for r in resumed_rows] == [_key(r) for r in whole_rows[2:]]
    for layer, m in whole.layer_matrices().items():
        np.testing.assert_array_equal(resumed.layer_matrices()[layer], m, err_msg=layer)


def test_a_checkpoint_of_whole_inputs_under_delays_is_refused_in_one_line(tmp_path):
    s = load_scenario(Path(__file__).resolve().parents[1] / "scenarios/studies/map-delays.toml", ZERO_DELAY_MAP)
    stop_at_checkpoint(s, tmp_path, 2)
    old = _as_whole_inputs_form(*checkpoint.load(tmp_path, 0, s), landed_on=True)
    with pytest.raises(checkpoint.CheckpointError, match="whole inputs after every landing"):
        checkpoint.restoring(lambda: Simulation(s, resume=old), old, tmp_path)
