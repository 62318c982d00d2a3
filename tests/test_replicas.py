"""Replicas: R runs simulated together with a batch axis give each run's exact numbers."""

import numpy as np
import pytest

from asyncneurons.reference import Reference
from asyncneurons.replicas import Replicas, supports


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

    from asyncneurons.runner import run_experiment

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
