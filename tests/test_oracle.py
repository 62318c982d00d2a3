"""The synchronous limit: at zero delay, on_all firing and wait pacing the event engine
reproduces the plain layer-synchronous algorithm exactly, sample for sample."""

import numpy as np
import pytest

from asyncneurons.engine.reference import Reference
from asyncneurons.engine.simulation import Simulation


def _both(s, ticks):
    ra, rb = [], []
    sim = Simulation(s, on_episode=ra.append, max_ticks=ticks).run()
    ref = Reference(s, on_episode=rb.append, max_ticks=ticks).run()
    return sim, ref, ra, rb


def _assert_same(sim, ref, ra, rb):
    assert [(r["episode"], r["return"], r["length"]) for r in ra] == \
           [(r["episode"], r["return"], r["length"]) for r in rb]
    a, b = sim.layer_matrices(), ref.layer_matrices()
    assert a.keys() == b.keys()
    for layer in a:
        np.testing.assert_array_equal(a[layer], b[layer], err_msg=f"layer {layer}")
    for pa, pb in zip(sim.critic.P if sim.critic else [], ref.critic.P if ref.critic else []):
        np.testing.assert_array_equal(pa, pb)


def test_cartpole_global_reinforce_matches_the_reference_for_hundreds_of_steps(scenario):
    s = scenario(experiment={"episodes": 1000})
    sim, ref, ra, rb = _both(s, ticks=700)
    assert len(ra) >= 10  # several episode boundaries (dummy steps, trace resets) are crossed
    _assert_same(sim, ref, ra, rb)
    # the weights really moved: equality is not that of two untouched initialisations
    init = Reference(s, max_ticks=1)
    assert not np.array_equal(init.layer_matrices()[1], ref.layer_matrices()[1])


def test_actions_are_identical_step_for_step(scenario):
    s = scenario(experiment={"episodes": 1000})
    actions = []
    sim = Simulation(s, max_ticks=300)
    receive = sim.environment.receive_action

    def spy(action, wave):
        actions.append(action)
        receive(action, wave)
    sim.environment.receive_action = spy
    sim.run()
    ref = Reference(s, max_ticks=300).run()
    assert actions == ref.actions[:len(actions)] and len(actions) >= 299


@pytest.mark.parametrize("over", [
    {"learning": {"lambda": 0.0}},
    {"env": {"dummy_step": False}},
    {"env": {"bootstrap_truncated": True, "max_episode_steps": 15}},
    {"network": {"hidden": [8], "unit": "gaussian", "variance": [0.3, 1.0]},
     "learning": {"lr": [0.01, 0.001], "lr_end": [0.01, 0.001], "critic_hidden": [16], "critic_lr": [0.01, 0.001],
                  "critic_lr_end": [0.01, 0.001]}},
    {"timing": {"firing": "on_input"}},
])
def test_variants_match_the_reference(scenario, over):
    s = scenario(experiment={"episodes": 1000}, **over)
    _assert_same(*_both(s, ticks=250))


def test_continuous_actions_match_the_reference(scenario):
    s = scenario(env={"id": "MountainCarContinuous-v0", "max_episode_steps": 60},
                 experiment={"episodes": 1000},
                 network={"hidden": [16], "unit": "gaussian", "variance": [0.1, 0.5]},
                 learning={"lr": [0.01, 0.001], "lr_end": [0.01, 0.001], "critic_hidden": [16],
                           "critic_lr": [0.01, 0.001], "critic_lr_end": [0.01, 0.001]})
    _assert_same(*_both(s, ticks=200))


def test_multiplexer_without_critic_matches_the_reference(scenario):
    s = scenario(env={"id": "asyncneurons/Multiplexer20-v0", "dummy_step": False},
                 experiment={"episodes": 200},
                 network={"hidden": [64, 32], "output": "bernoulli"},
                 learning={"critic": "none", "lambda": 0.0, "lr": [0.01, 1e-3, 1e-4], "lr_end": None})
    _assert_same(*_both(s, ticks=None))


@pytest.mark.parametrize("rule", ["weight_max", "weight_max_exact"])
@pytest.mark.parametrize("lambda_", [0.0, 0.8])
def test_weight_max_matches_the_reference_with_and_without_traces(scenario, rule, lambda_):
    s = scenario(experiment={"episodes": 1000}, learning={"rule": rule, "lambda": lambda_})
    _assert_same(*_both(s, ticks=400))


def test_weight_max_with_another_norm_power_matches_the_reference(scenario):
    s = scenario(experiment={"episodes": 1000}, learning={"rule": "weight_max", "norm_power": 3.0})
    _assert_same(*_both(s, ticks=300))


@pytest.mark.parametrize("lambda_", [0.0, 0.8])
def test_ste_backprop_matches_the_reference(scenario, lambda_):
    s = scenario(experiment={"episodes": 1000}, learning={"rule": "ste_backprop", "lambda": lambda_})
    _assert_same(*_both(s, ticks=400))


def test_ste_backprop_trace_term_is_the_straight_through_gradient(scenario):
    """One forward pass: each hidden term equals backprop through p = σ(u) in place of h."""
    from asyncneurons.learning.kernels import potential
    s = scenario(experiment={"episodes": 1000}, learning={"rule": "ste_backprop", "lambda": 0.0})
    ref = Reference(s, max_ticks=1)
    obs = ref._reset(0)
    ref.forward(obs)
    out, l2, l1 = ref.layers[2], ref.layers[1], ref.layers[0]
    pi, a = out.aux
    g_out = ((np.eye(2)[a] - pi))[:-1]
    g2 = (out.P[:, :-1].T @ g_out) * l2.aux * (1 - l2.aux)
    g1 = (l2.P[:, :-1].T @ g2) * l1.aux * (1 - l1.aux)
    np.testing.assert_allclose(l2.E[:, -1], g2, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(l1.E[:, -1], g1, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(l1.E[:, :-1], g1[:, None] * obs[None, :], rtol=1e-12, atol=1e-15)
    assert potential  # the reference used the shared kernel for the forward pass


def test_backprop_traces_are_the_exact_gradient_of_log_pi(scenario):
    """Deterministic softplus units, zero delay: the trace after one step is ∇_W log π(a | s),
    checked against finite differences."""
    from asyncneurons.learning.kernels import softplus
    from asyncneurons.learning.units import softmax_policy
    s = scenario(experiment={"episodes": 1000}, network={"hidden": [5, 4], "unit": "softplus"},
                 learning={"rule": "backprop", "lambda": 0.0})
    ref = Reference(s, max_ticks=1)
    obs = ref._reset(0)
    ref.forward(obs)
    a = ref.layers[-1].aux[1]

    def log_pi(Ps):
        x = obs
        for P in Ps[:-1]:
            x = softplus(P[:, :-1] @ x + P[:, -1])
        return np.log(softmax_policy(Ps[-1][:, :-1] @ x + Ps[-1][:, -1], 1.0)[a])

    Ps = [lay.P.copy() for lay in ref.layers]
    for l, lay in enumerate(ref.layers):
        numeric = np.zeros_like(lay.P)
        for idx in np.ndindex(lay.P.shape):
            hi = [p.copy() for p in Ps]
            lo = [p.copy() for p in Ps]
            hi[l][idx] += 1e-6
            lo[l][idx] -= 1e-6
            numeric[idx] = (log_pi(hi) - log_pi(lo)) / 2e-6
        np.testing.assert_allclose(lay.E, numeric, rtol=1e-5, atol=1e-8)


def test_backprop_matches_the_reference(scenario):
    s = scenario(experiment={"episodes": 1000}, network={"hidden": [64, 32], "unit": "softplus"},
                 learning={"rule": "backprop", "lambda": 0.8})
    _assert_same(*_both(s, ticks=300))


MAP_CARTPOLE = {
    "network": {"hidden": [64, 32], "unit": "gaussian", "output": "categorical", "temperature": [1.0, 1.0, 2.0],
                "variance": [0.03, 0.1, 0.1], "bias_init": 0.0},
    "learning": {"rule": "map_prop", "lambda": 0.95, "lr": [0.01, 1e-5, 1e-6], "lr_end": [0.001, 1e-6, 1e-8],
                 "critic": "map_prop", "critic_lambda": 0.95, "critic_variance": [0.03, 0.1, 0.1],
                 "critic_lr": [0.02, 2e-5, 2e-6], "critic_lr_end": [0.002, 2e-6, 2e-7], "adam_eps": 1e-9,
                 "map_steps": 20, "map_step_size": 0.5},
}


@pytest.mark.parametrize("critic", ["map_prop", "mlp"])
def test_map_prop_matches_the_published_synchronous_iterations(scenario, critic):
    over = {k: dict(v) for k, v in MAP_CARTPOLE.items()}
    over["learning"]["critic"] = critic
    s = scenario(experiment={"episodes": 1000}, **over)
    _assert_same(*_both(s, ticks=300))


def test_map_prop_continuous_actions_match_the_reference(scenario):
    s = scenario(env={"id": "MountainCarContinuous-v0", "max_episode_steps": 50, "reward_clip": 5.0},
                 experiment={"episodes": 1000},
                 network={"hidden": [16, 8], "unit": "gaussian", "variance": [0.03, 0.1, 0.5], "bias_init": 0.0},
                 learning={"rule": "map_prop", "lambda": 0.97, "lr": [0.004, 4e-6, 4e-8], "lr_end": None,
                           "critic": "map_prop", "critic_variance": [0.003, 0.01, 0.05], "critic_hidden": [16, 8],
                           "critic_lr": [0.01, 1e-5, 1e-6], "critic_lr_end": None, "adam_eps": 1e-9})
    _assert_same(*_both(s, ticks=150))


def test_relaxation_moves_hidden_values_toward_the_map_state(scenario):
    """The relaxed state is more probable given (s, a) than the sampled one."""
    from asyncneurons.learning.kernels import potential, softplus
    from asyncneurons.learning.rules.map_prop import relax_layers
    s = scenario(experiment={"episodes": 1000}, **MAP_CARTPOLE)
    ref = Reference(s, max_ticks=1)
    obs = ref._reset(0)
    ref.forward(obs)
    layers = ref.layers
    a = layers[-1].frozen_action

    def log_joint(vals):
        total, x = 0.0, obs
        for l, lay in enumerate(layers):
            H = np.empty_like(lay.P)
            H[:, :-1], H[:, -1] = x, 1.0
            pot = potential(lay.P, H)
            if l < len(layers) - 1:
                total += -np.sum((vals[l] - softplus(pot)) ** 2) / (2 * lay.lp.variance)
            else:
                z = pot / lay.lp.temperature
                total += z[a] - np.log(np.exp(z - z.max()).sum()) - z.max()
            x = vals[l]
        return total

    sampled = [lay.values for lay in layers]
    relaxed, _, _ = relax_layers([y.P for y in layers], [y.kind for y in layers], [y.lp for y in layers],
                                 obs, sampled, a, 20, 0.5)
    assert log_joint(relaxed) > log_joint(sampled)
