"""The event engine against the independent oracle (tests/oracle): the published algorithms in
plain NumPy, written from algorithms.md, sharing with the engine only the keyed uniforms and the
initial weights.

Agreement means: the same episodes (returns and lengths, so the same actions), and every final
weight of the actor and the critic equal to within 1e-9 of the largest weight of its layer. The
two implementations add in different orders (matrix products against row-wise reductions), so
they differ by rounding; the critic of MAP Propagation divides by a noise sample (the gate), which
magnifies rounding most, to about 1e-11 of a layer's scale here.
"""

import numpy as np
import pytest

from asyncneurons.model.scenario import load_scenario
from asyncneurons.engine.simulation import Simulation
from oracle import Oracle, SupervisedOracle, engine_initial_state

RTOL = 1e-9


def _engine_and_oracle(s, ticks):
    init = engine_initial_state(s)
    rows = []
    sim = Simulation(s, on_episode=rows.append, max_ticks=ticks).run()
    oracle = Oracle(s, init, max_ticks=ticks).run()
    return sim, oracle, rows, init


def _assert_close(label, ours, theirs):
    np.testing.assert_allclose(theirs, ours, rtol=RTOL, atol=RTOL * float(np.abs(ours).max()), err_msg=label)


def assert_agree(s, ticks):
    sim, oracle, rows, init = _engine_and_oracle(s, ticks)
    assert [(r["episode"], r["return"], r["length"]) for r in rows] == oracle.episodes
    engine = sim.layer_matrices()
    for layer, m in oracle.layer_matrices().items():
        _assert_close(f"actor layer {layer}", engine[layer], m)
        assert not np.array_equal(m, init["actor"][layer - 1]), "every layer must have learned"
    assert (sim.critic is None) == (oracle.critic is None)
    if sim.critic is not None:
        for l, (a, b) in enumerate(zip(sim.critic.P, oracle.critic.matrices())):
            _assert_close(f"critic layer {l}", a, b)
    return sim, oracle, rows


PUBLISHED = [
    "weight-max/cartpole", "weight-max/cartpole-traces", "weight-max/acrobot", "weight-max/acrobot-traces",
    "weight-max/lunarlander", "weight-max/lunarlander-traces", "weight-max/multiplexer",
    "baselines/global-reinforce-cartpole", "baselines/ste-backprop-cartpole", "baselines/backprop-cartpole",
    "baselines/backprop-acrobot", "baselines/backprop-lunarlander", "baselines/backprop-mountaincar-continuous",
    "map-prop/cartpole", "map-prop/acrobot", "map-prop/lunarlander", "map-prop/mountaincar-continuous",
]


@pytest.mark.parametrize("name", PUBLISHED)
def test_every_published_scenario_agrees_with_the_oracle_for_300_steps(name):
    """Each published configuration (rule, units, critic, learning rates, schedule, task) as it
    stands in scenarios/paper, for 300 agent steps."""
    s = load_scenario(f"scenarios/paper/{name}.toml")
    assert_agree(s, 300)


@pytest.mark.parametrize("name", ["weight-max/cartpole-traces", "baselines/global-reinforce-cartpole",
                                  "weight-max/multiplexer"])
def test_adam_agrees_across_the_end_of_its_bias_correction(name):
    """Past t = 1,000 Adam stops correcting its moments: its step grows by about 1.26."""
    s = load_scenario(f"scenarios/paper/{name}.toml")
    sim, _, _ = assert_agree(s, 1100)
    assert min(g.t for g in sim.groups) > 1000


@pytest.mark.slow
def test_map_propagation_agrees_across_the_end_of_adams_bias_correction():
    assert_agree(load_scenario("scenarios/paper/map-prop/cartpole.toml"), 1100)


@pytest.mark.parametrize("over", [
    {"env": {"dummy_step": False}},
    {"env": {"max_episode_steps": 15}},
    {"env": {"max_episode_steps": 15, "bootstrap_truncated": True}},
    {"learning": {"rule": "weight_max", "lambda": 0.0, "lr_steps": 150}},
    {"learning": {"rule": "weight_max_exact"}},
    {"env": {"id": "MountainCarContinuous-v0", "max_episode_steps": 40, "reward_clip": 5.0, "action_map": "affine"},
     "network": {"hidden": [16, 8], "unit": "gaussian", "variance": [0.1, 0.1, 0.5]},
     "learning": {"rule": "weight_max"}},
])
def test_termination_truncation_dummy_step_and_schedules_agree(scenario, over):
    """Episode ends with and without the dummy step, time-limit ends masked or bootstrapped, a
    learning-rate schedule that reaches its end, the exact Weight Max variant, clipped rewards."""
    base = {"experiment": {"episodes": 1000}, "learning": {"rule": "weight_max", "lambda": 0.8}}
    for k, v in over.items():
        base.setdefault(k, {}).update(v)
    assert_agree(scenario(**base), 300)


@pytest.mark.parametrize("critic", ["map_prop", "mlp"])
@pytest.mark.parametrize("dummy_step", [True, False])
def test_map_propagation_agrees_with_either_critic_and_either_episode_end(scenario, critic, dummy_step):
    s = scenario(experiment={"episodes": 1000}, env={"dummy_step": dummy_step},
                 network={"hidden": [16, 8], "unit": "gaussian", "output": "categorical", "temperature": [1.0, 1.0, 2.0],
                          "variance": [0.03, 0.1, 0.1], "bias_init": 0.0},
                 learning={"rule": "map_prop", "lambda": 0.95, "critic": critic, "critic_hidden": [16, 8],
                           "critic_variance": [0.03, 0.1, 0.1], "lr": [0.01, 1e-3, 1e-4], "lr_end": None,
                           "critic_lr": [0.02, 2e-3, 2e-4], "critic_lr_end": None, "adam_eps": 1e-9, "map_steps": 6})
    assert_agree(s, 300)


def test_a_mistake_the_engine_shares_with_its_reference_is_caught(monkeypatch):
    """Adam that keeps correcting its moments past t = 1,000: the engine and the layer-synchronous
    reference (which shares the engine's optimizer) still agree, the oracle does not."""
    import importlib

    from asyncneurons.learning import optim
    from asyncneurons.engine.reference import Reference

    right = optim.adam_constants

    def always_corrected(cfg, t):
        return right(optim.AdamConfig(cfg.beta1, cfg.beta2, cfg.eps, 10 ** 9), t)
    patched = 0
    for name in ("asyncneurons.learning.optim", "asyncneurons.learning.rules.base", "asyncneurons.learning.rules.weight_max", "asyncneurons.learning.critic",
                 "asyncneurons.engine.replicas",
                 "asyncneurons.engine.reference", "asyncneurons.engine.simulation", "asyncneurons.learning.map_critic"):
        module = importlib.import_module(name)
        if hasattr(module, "adam_constants"):
            monkeypatch.setattr(module, "adam_constants", always_corrected)
            patched += 1
    assert patched >= 1
    s = load_scenario("scenarios/paper/weight-max/multiplexer.toml")
    sim, oracle, _, _ = _engine_and_oracle(s, 1100)
    ref = Reference(s, max_ticks=1100).run()
    for layer, m in sim.layer_matrices().items():
        np.testing.assert_array_equal(ref.layer_matrices()[layer], m)
    with pytest.raises(AssertionError):
        for layer, m in oracle.layer_matrices().items():
            _assert_close(f"actor layer {layer}", sim.layer_matrices()[layer], m)


def test_the_oracles_multiplexer_reward_is_the_published_one():
    """The oracle runs the multiplexer task as registered; its rewards follow §5.1: +1 when the
    answer equals the data bit the address (first bit most significant) selects."""
    s = load_scenario("scenarios/paper/weight-max/multiplexer.toml")
    oracle = Oracle(s, engine_initial_state(s), max_ticks=200)
    seen = []
    step = oracle.task.step

    def spy(action):
        obs = oracle.task.unwrapped._obs.copy()
        out = step(action)
        bits = (obs > 0).astype(int)
        address = int("".join(map(str, bits[:4])), 2)
        target = 1 if bits[4 + address] else -1
        answer = 1 if int(action) == 1 else -1
        seen.append(out[1] == (1.0 if answer == target else -1.0))
        return out
    oracle.task.step = spy
    oracle.run()
    assert len(seen) == 200 and all(seen)


@pytest.mark.parametrize("name", ["map-prop/multiplexer", "map-prop/regression"])
def test_the_batched_supervised_tasks_agree_with_the_oracle(name):
    """MAP Propagation's 37-bit multiplexer (δ = r) and regression (δ = y − μ_MAP with the gate),
    batches of 128: four updates, 512 samples."""
    from asyncneurons.engine.supervised import SupervisedRun

    s = load_scenario(f"scenarios/paper/{name}.toml")
    init = engine_initial_state(s)
    rows = []
    run = SupervisedRun(s, on_episode=rows.append, max_ticks=4).run()
    oracle = SupervisedOracle(s, init, max_ticks=4).run()
    assert [(r["episode"], r["return"]) for r in rows] == oracle.episodes
    for l, lay in enumerate(run.layers):
        _assert_close(f"layer {l + 1}", lay["P"], oracle.layer_matrices()[l + 1])
        assert not np.array_equal(lay["P"], init["actor"][l])
