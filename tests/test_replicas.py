"""Replicas: R runs simulated together with a batch axis give each run's exact numbers."""

import contextlib

import numpy as np
import pytest

from asyncneurons.engine.reference import Reference
from asyncneurons.engine.replicas import Replicas, supports


def _key(rows):
    return [(r["run"], r["episode"], r["return"], r["length"]) for r in rows]


@pytest.mark.parametrize("over", [
    {},
    {"learning": {"rule": "global_reinforce", "lambda": 0.8}},
    {"learning": {"rule": "weight_max_exact", "lambda": 0.8}},
    {"learning": {"rule": "ste_backprop", "lambda": 0.0}},
    {"network": {"hidden": [16, 8], "unit": "softplus", "output": "categorical", "temperature": [1.0, 1.0, 2.0]},
     "learning": {"rule": "backprop", "lambda": 0.9}},
    {"env": {"id": "Acrobot-v1"}},
    {"env": {"id": "asyncneurons/Multiplexer20-v0", "dummy_step": False}, "network": {"output": "bernoulli"},
     "learning": {"critic": "none", "lambda": 0.0}},
    {"env": {"id": "MountainCarContinuous-v0", "max_episode_steps": 40, "reward_clip": 5.0},
     "network": {"hidden": [16, 8], "unit": "gaussian", "variance": [0.1, 0.1, 0.5]}},
])
def test_each_replica_equals_its_run_alone(scenario, over):
    base = {"experiment": {"episodes": 6}, "learning": {"rule": "weight_max", "lambda": 0.8}}
    for k, v in over.items():
        base.setdefault(k, {}).update(v)
    s = scenario(**base)
    assert supports(s)
    rows = []
    rep = Replicas(s, [0, 1, 2], on_episode=rows.append, max_ticks=300).run()
    alone = []
    for r in range(3):
        ref = Reference(s, r, on_episode=alone.append, max_ticks=300).run()
        if not any(x["run"] == r for x in rows) or len([x for x in rows if x["run"] == r]) < 6:
            for layer, m in ref.layer_matrices().items():  # still running at the tick limit: same weights
                np.testing.assert_array_equal(rep.layer_matrices(r)[layer], m)
    assert sorted(_key(rows)) == sorted(_key(alone))


def test_replicas_refuse_what_they_cannot_share(scenario):
    assert not supports(scenario(timing={"synapse_delay": 1.0}))
    assert not supports(scenario(env={"pacing": "clock"}))


def test_replicas_hold_each_runs_weights_step_for_step(scenario):
    s = scenario(experiment={"episodes": 1000}, learning={"rule": "weight_max", "lambda": 0.8})
    rep = Replicas(s, [0, 1, 2, 3], max_ticks=250).run()
    for r in range(4):
        ref = Reference(s, r, max_ticks=250).run()
        for layer, m in ref.layer_matrices().items():
            np.testing.assert_array_equal(rep.layer_matrices(r)[layer], m)
        for a, b in zip(rep.critic.P, ref.critic.P):
            np.testing.assert_array_equal(a[r], b)


@pytest.mark.parametrize("workers", [1, 2])
def test_run_with_replicas_writes_the_same_folder_as_separate_runs(scenario, tmp_path, workers):
    import csv

    from asyncneurons.study.runner import run_experiment

    def table(folder):
        with open(folder / "metrics.csv") as f:
            return [{k: v for k, v in r.items() if k != "wall_s"} for r in csv.DictReader(f)]
    s1 = scenario(experiment={"runs": 4, "episodes": 8}, learning={"rule": "weight_max", "lambda": 0.8})
    s4 = scenario(experiment={"runs": 4, "episodes": 8}, learning={"rule": "weight_max", "lambda": 0.8},
                  engine={"replicas": 4})
    run_experiment(s1, tmp_path / "one", workers=workers)
    summary = run_experiment(s4, tmp_path / "four", workers=workers)
    assert summary["status"] == "complete"
    assert table(tmp_path / "one") == table(tmp_path / "four")


@pytest.mark.parametrize("critic", ["map_prop", "mlp"])
def test_map_prop_replicas_equal_their_runs(scenario, critic):
    s = scenario(experiment={"episodes": 1000},
                 network={"hidden": [16, 8], "unit": "gaussian", "output": "categorical", "temperature": [1.0, 1.0, 2.0],
                          "variance": [0.03, 0.1, 0.1], "bias_init": 0.0},
                 learning={"rule": "map_prop", "lambda": 0.95, "critic": critic, "critic_hidden": [16, 8],
                           "critic_variance": [0.03, 0.1, 0.1], "lr": [0.01, 1e-3, 1e-4], "lr_end": None,
                           "critic_lr": [0.02, 2e-3, 2e-4], "critic_lr_end": None, "adam_eps": 1e-9, "map_steps": 6})
    assert supports(s)
    rows = []
    rep = Replicas(s, [0, 1, 2], on_episode=rows.append, max_ticks=150).run()
    alone = []
    for r in range(3):
        ref = Reference(s, r, on_episode=alone.append, max_ticks=150).run()
        for layer, m in ref.layer_matrices().items():
            np.testing.assert_array_equal(rep.layer_matrices(r)[layer], m)
    assert sorted(_key(rows)) == sorted(_key(alone))


_CRITICS = {
    "none": {"critic": "none"},
    "mlp": {"critic": "mlp", "critic_hidden": [12, 6]},
    "map_prop": {"critic": "map_prop", "critic_hidden": [12, 6], "critic_variance": [0.03, 0.1, 0.1], "map_steps": 4},
}


@pytest.mark.parametrize("dummy_step", [True, False])
@pytest.mark.parametrize("critic", sorted(_CRITICS))
def test_a_replica_equals_its_run_alone_for_every_critic_and_dummy_step(scenario, critic, dummy_step):
    """Episodes of different lengths end at different steps: a replica whose episode ends
    evaluates its critic again on the new episode's first state (without the dummy step), and
    no other replica's critic may sample or move for it."""
    s = scenario(experiment={"episodes": 1000}, env={"dummy_step": dummy_step, "max_episode_steps": 25},
                 network={"hidden": [12, 6]},
                 learning={"rule": "weight_max", "lambda": 0.8, **_CRITICS[critic]})
    rows, alone = [], []
    rep = Replicas(s, [0, 1, 2], on_episode=rows.append, max_ticks=300).run()
    for r in range(3):
        ref = Reference(s, r, on_episode=alone.append, max_ticks=300).run()
        for layer, m in ref.layer_matrices().items():
            np.testing.assert_array_equal(rep.layer_matrices(r)[layer], m)
        if ref.critic is not None:
            for a, b in zip(rep.critic.P, ref.critic.P):
                np.testing.assert_array_equal(a[r], b)
    assert len({row["length"] for row in alone}) > 1  # episodes end at different steps
    assert sorted(_key(rows)) == sorted(_key(alone))


class _Killed(Exception):
    pass


@contextlib.contextmanager
def _killed_at_step(k: int, monkeypatch):
    """Replicas save a checkpoint, then die as a kill would, at the top of step ``k``."""
    from asyncneurons.engine import checkpoint

    save = checkpoint.save_replicas

    def save_then_kill(rep, loop, folder):
        save(rep, loop, folder)
        if loop["k"] == k:
            raise _Killed
    monkeypatch.setattr(checkpoint, "save_replicas", save_then_kill)
    with pytest.raises(_Killed):
        yield
    monkeypatch.setattr(checkpoint, "save_replicas", save)


@pytest.mark.parametrize("over", [
    {},
    {"network": {"hidden": [12, 6], "unit": "gaussian", "output": "categorical", "temperature": [1.0, 1.0, 2.0],
                 "variance": [0.03, 0.1, 0.1]},
     "learning": {"rule": "map_prop", "lambda": 0.95, "critic": "map_prop", "critic_hidden": [12, 6],
                  "critic_variance": [0.03, 0.1, 0.1], "map_steps": 4}},
    {"env": {"id": "MountainCarContinuous-v0", "max_episode_steps": 30, "reward_clip": 5.0},
     "network": {"hidden": [12, 6], "unit": "gaussian", "variance": [0.1, 0.1, 0.5]}},
    {"env": {"id": "LunarLander-v3", "max_episode_steps": 40},
     "network": {"hidden": [12, 6], "unit": "softplus", "output": "categorical", "temperature": [1.0, 1.0, 2.0]},
     "learning": {"rule": "backprop", "lambda": 0.9}},
])
def test_an_interrupted_replica_chunk_resumes_to_the_numbers_of_an_uninterrupted_one(scenario, tmp_path,
                                                                                      monkeypatch, over):
    """Killed mid-episode (most replicas inside an episode), the chunk resumes from its checkpoint:
    every task is replayed to where it was, and every episode and weight equals the whole run's."""
    import csv

    from asyncneurons.engine import checkpoint
    from asyncneurons.study.runner import simulate_replicas

    base = {"experiment": {"episodes": 5}, "learning": {"rule": "weight_max", "lambda": 0.8}}
    for k, v in over.items():
        base.setdefault(k, {}).update(v)
    s = scenario(**base)
    whole = simulate_replicas(s, [0, 1, 2], folder=tmp_path / "whole")

    with _killed_at_step(37, monkeypatch):
        simulate_replicas(s, [0, 1, 2], folder=tmp_path / "cut", checkpoint_seconds=0.0)
    state, arrays = checkpoint.load_replicas(tmp_path / "cut" / "checkpoints", [0, 1, 2], s)
    assert state["loop"]["dict"][0] == ["k", 37]
    assert any(len(arrays[actions["array"]]) for actions in state["replay"])  # killed inside an episode
    resumed = simulate_replicas(s, [0, 1, 2], folder=tmp_path / "cut", resume=True)

    def rows(folder, r):
        with open(folder / "episodes" / f"run-{r}.csv") as f:
            return [{k: v for k, v in row.items() if k != "wall_s"} for row in csv.DictReader(f)]
    for r in range(3):
        assert rows(tmp_path / "cut", r) == rows(tmp_path / "whole", r) and len(rows(tmp_path / "whole", r)) == 5
        for layer, m in whole.layer_matrices(r).items():
            np.testing.assert_array_equal(resumed.layer_matrices(r)[layer], m)
        for a, b in zip(resumed.critic.P, whole.critic.P):
            np.testing.assert_array_equal(a[r], b[r])


def test_a_replica_checkpoint_of_other_runs_or_another_scenario_is_refused(scenario, tmp_path):
    from asyncneurons.engine import checkpoint
    from asyncneurons.study.runner import simulate_replicas

    s = scenario(experiment={"episodes": 2}, learning={"rule": "weight_max", "lambda": 0.8})
    simulate_replicas(s, [0, 1], folder=tmp_path, checkpoint_seconds=0.0)
    other = scenario(experiment={"episodes": 2}, learning={"rule": "weight_max", "lambda": 0.5})
    with pytest.raises(checkpoint.CheckpointError, match="another scenario"):
        simulate_replicas(other, [0, 1], folder=tmp_path, resume=True)
    assert checkpoint.load_replicas(tmp_path / "checkpoints", [0, 2], s) is None


def test_a_resumed_experiment_keeps_a_chunk_whose_replica_had_finished(scenario, tmp_path, monkeypatch):
    """A replica that finished its episodes before the kill is done by the run folder's count, yet
    its chunk's checkpoint holds it: the resumed experiment runs the chunk as it was, from the
    checkpoint, and ends with the uninterrupted experiment's numbers."""
    import csv
    import shutil

    from asyncneurons.engine import checkpoint
    from asyncneurons.study.runner import run_experiment

    s = scenario(experiment={"runs": 3, "episodes": 5}, learning={"rule": "weight_max", "lambda": 0.8},
                 engine={"replicas": 3})
    run_experiment(s, tmp_path / "whole")

    with _killed_at_step(30, monkeypatch):
        run_experiment(s, tmp_path / "cut", checkpoint_seconds=0.0)
    # run 0 had finished when the chunk was killed: its episode file is complete
    shutil.copy(tmp_path / "whole" / "episodes" / "run-0.csv", tmp_path / "cut" / "episodes" / "run-0.csv")
    started = []
    monkeypatch.setattr(checkpoint, "restore_replicas",
                        lambda rep, *a, f=checkpoint.restore_replicas: started.append(rep.runs) or f(rep, *a))
    run_experiment(s, tmp_path / "cut", resume=True)
    assert started == [[0, 1, 2]]

    def table(folder):
        with open(folder / "metrics.csv") as f:
            return [{k: v for k, v in r.items() if k != "wall_s"} for r in csv.DictReader(f)]
    assert table(tmp_path / "cut") == table(tmp_path / "whole")


def test_a_checkpoint_with_one_sample_counter_per_unit_resumes_to_the_same_numbers(scenario, tmp_path, monkeypatch):
    """Checkpoints written before replicas kept a sample counter per replica hold one per unit
    (every replica's counters move in lockstep): resumed, each replica counts on from it."""
    import csv

    from asyncneurons.engine import checkpoint
    from asyncneurons.study.runner import simulate_replicas

    s = scenario(experiment={"episodes": 4}, learning={"rule": "weight_max", "lambda": 0.8})
    whole = simulate_replicas(s, [0, 1, 2], folder=tmp_path / "whole")
    with _killed_at_step(29, monkeypatch):
        simulate_replicas(s, [0, 1, 2], folder=tmp_path / "cut", checkpoint_seconds=0.0)

    def one_per_unit(rep, *args, restore=checkpoint.restore_replicas):
        loop = restore(rep, *args)
        for lay in rep.layers:
            assert lay.count.shape == lay.keys1.shape  # saved per replica ...
            lay.count = lay.count[0].copy()  # ... restored as an older checkpoint holds it
        return loop
    monkeypatch.setattr(checkpoint, "restore_replicas", one_per_unit)
    resumed = simulate_replicas(s, [0, 1, 2], folder=tmp_path / "cut", resume=True)

    def rows(folder, r):
        with open(folder / "episodes" / f"run-{r}.csv") as f:
            return [{k: v for k, v in row.items() if k != "wall_s"} for row in csv.DictReader(f)]
    for r in range(3):
        assert rows(tmp_path / "cut", r) == rows(tmp_path / "whole", r) and len(rows(tmp_path / "whole", r)) == 4
        for layer, m in whole.layer_matrices(r).items():
            np.testing.assert_array_equal(resumed.layer_matrices(r)[layer], m)
