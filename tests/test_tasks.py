"""Tasks: our multiplexer and regression environments and the gymnasium environments a scenario
may name."""

from __future__ import annotations

import json
import warnings
from importlib import resources

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import asyncneurons.tasks as tasks
from asyncneurons.errors import ScenarioError
from asyncneurons.tasks import (SUPPORTED, action_spec, known_env_ids, make_env,
                                to_env_action)
from asyncneurons.tasks.multiplexer import Multiplexer
from asyncneurons.tasks.regression import Regression

# Box2D's SWIG bindings warn on import (LunarLander); not ours to fix.
pytestmark = pytest.mark.filterwarnings(
    "ignore:builtin type .* has no __module__ attribute:DeprecationWarning")

OWN_IDS = sorted(i for i in gym.registry if i.startswith("asyncneurons/"))
MUX_IDS = [i for i in OWN_IDS if "Multiplexer" in i]
GYM_IDS = [i for i in SUPPORTED if not i.startswith("asyncneurons/")]


class FixedBits:
    """Stands in for ``np_random``: ``integers`` returns the given bits."""

    def __init__(self, bits):
        self.bits = np.asarray(bits, dtype=np.int64)

    def integers(self, low, high, size):
        assert (low, high, size) == (0, 2, len(self.bits))
        return self.bits.copy()


def reference_target(bits, k):
    """An independent reading of algorithms.md §5.1: address as a binary string, MSB first."""
    address = int("".join(str(int(b)) for b in bits[:k]), 2)
    return 1 if bits[k + address] == 1 else -1


# ---------------------------------------------------------------------------------------------
# Multiplexer


def test_our_envs_are_registered():
    assert OWN_IDS == ["asyncneurons/Multiplexer20-v0", "asyncneurons/Multiplexer37-v0",
                       "asyncneurons/Regression-v0"]
    assert isinstance(gym.make("asyncneurons/Regression-v0").unwrapped, Regression)
    assert gym.make("asyncneurons/Multiplexer20-v0").unwrapped.k == 4
    assert gym.make("asyncneurons/Multiplexer37-v0").unwrapped.k == 5


# The regression task's boxes are unbounded by design (x ~ N(0, I), y ≥ 0 has no upper bound):
# the checker's advice to bound and normalize them is all it may say about that task.
UNBOUNDED_BOX_ADVICE = (r".*A Box (action|observation) space (minimum|maximum) value is -?infinity",
                        r".*we recommend using a symmetric and normalized space")


@pytest.mark.parametrize("env_id", OWN_IDS)
def test_env_checker_passes(env_id):
    env = gym.make(env_id)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        if env_id == "asyncneurons/Regression-v0":
            for message in UNBOUNDED_BOX_ADVICE:
                warnings.filterwarnings("ignore", message=message, category=UserWarning)
        check_env(env.unwrapped, skip_render_check=True)


@pytest.mark.parametrize("env_id,k", [("asyncneurons/Multiplexer20-v0", 4),
                                      ("asyncneurons/Multiplexer37-v0", 5)])
def test_spaces(env_id, k):
    env = make_env(env_id)
    n = k + 2 ** k
    assert env.observation_space == gym.spaces.Box(-1.0, 1.0, (n,), np.float32)
    assert env.action_space == gym.spaces.Discrete(2)
    obs, info = env.reset(seed=0)
    assert obs.shape == (n,) and obs.dtype == np.float32
    assert set(np.unique(obs)) <= {-1.0, 1.0}
    assert action_spec(env) == ("discrete", 2)


def test_hand_built_input_address_0011_reads_data_bit_3():
    env = Multiplexer(k=4)
    address = [0, 0, 1, 1]
    data = [0] * 16
    data[3] = 1
    env.np_random = FixedBits(address + data)
    obs, info = env.reset()
    np.testing.assert_array_equal(obs, 2 * np.array(address + data, dtype=np.float32) - 1)
    assert info == {"address": 3, "target": 1}
    assert env.step(1)[1] == 1.0      # action 1 means +1: correct
    env.np_random = FixedBits(address + data)
    env.reset()
    assert env.step(0)[1] == -1.0     # action 0 means -1: wrong

    # Flip only data bit 3: the target follows it; flipping another data bit changes nothing.
    data[3] = 0
    env.np_random = FixedBits(address + data)
    assert env.reset()[1]["target"] == -1
    data[12] = 1                       # address 1100 would read this one (MSB first)
    env.np_random = FixedBits(address + data)
    assert env.reset()[1]["target"] == -1
    env.np_random = FixedBits([1, 1, 0, 0] + data)
    assert env.reset()[1] == {"address": 12, "target": 1}


@pytest.mark.parametrize("k", [1, 2, 4, 5])
def test_target_matches_reference_on_random_inputs(k):
    env = Multiplexer(k=k)
    env.reset(seed=k)
    for _ in range(300):
        obs, info = env.reset()
        bits = (obs > 0).astype(int)
        y = reference_target(bits, k)
        assert info["target"] == y
        assert Multiplexer.target_of(obs, k) == (info["address"], y)
        action = env.np_random.integers(0, 2)
        _, reward, terminated, truncated, _ = env.step(action)
        assert reward == (1.0 if (2 * action - 1) == y else -1.0)
        assert terminated is True and truncated is False


def test_every_episode_is_one_step():
    env = make_env("asyncneurons/Multiplexer20-v0")
    env.reset(seed=1)
    assert env.step(0)[2] is True
    with pytest.raises(gym.error.ResetNeeded):
        env.unwrapped.step(0)
    with pytest.raises(gym.error.ResetNeeded):
        Multiplexer(k=4).step(0)
    with pytest.raises(ValueError, match="not 0 or 1"):
        fresh = Multiplexer(k=4)
        fresh.reset(seed=0)
        fresh.step(2)


@pytest.mark.parametrize("k", [0, -1, 2.5, True])
def test_bad_k_rejected(k):
    with pytest.raises(ValueError, match="k must be an integer"):
        Multiplexer(k=k)


@pytest.mark.parametrize("env_id", OWN_IDS)
def test_seeding_gives_identical_sequences(env_id):
    def run(seed):
        env = make_env(env_id)
        out = [env.reset(seed=seed)[0]]
        for _ in range(20):
            env.step(env.unwrapped.np_random.integers(0, 2))
            out.append(env.reset()[0])
        return np.array(out)

    np.testing.assert_array_equal(run(7), run(7))
    assert not np.array_equal(run(7), run(8))


@pytest.mark.parametrize("env_id", MUX_IDS)
def test_random_policy_earns_zero_on_average(env_id):
    env = make_env(env_id)
    env.reset(seed=3)
    rng = np.random.default_rng(4)
    rewards = []
    for _ in range(4000):
        env.reset()
        rewards.append(env.step(int(rng.integers(0, 2)))[1])
    assert set(rewards) == {-1.0, 1.0}
    assert abs(np.mean(rewards)) < 0.07   # ±4.4 standard errors


def test_registration_is_idempotent():
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # gymnasium warns when an id is registered again
        tasks.register()
        tasks.register()
    assert sorted(i for i in gym.registry if i.startswith("asyncneurons/")) == OWN_IDS


# ---------------------------------------------------------------------------------------------
# Scalar regression (algorithms.md §5.2)

W1_LISTED = [-0.4316, -0.6459, 1.3254, -1.0511, -0.2865, -0.2652, 1.8973, 0.8438]


def reference_teacher(x, w0, w1):
    """An independent reading of algorithms.md §5.2, one sum at a time."""
    hidden = [max(0.0, sum(x[i] * w0[i][j] for i in range(8))) for j in range(8)]
    return max(0.0, sum(hidden[j] * w1[j][0] for j in range(8)))


def test_regression_teacher_weights_match_the_reference():
    w0, w1 = Regression.weights()
    assert w0.shape == (8, 8) and w1.shape == (8, 1)
    assert w0.dtype == w1.dtype == np.float64
    assert w0[0, 0] == -0.9359686353499999
    np.testing.assert_allclose(w1[:, 0], W1_LISTED, atol=5e-5)
    assert not w0.flags.writeable and not w1.flags.writeable
    # Shipped as package data, read as plain JSON through importlib.resources.
    text = (resources.files("asyncneurons.tasks") / "data" / "regression_teacher.json").read_text()
    data = json.loads(text)
    np.testing.assert_array_equal(w0, data["W0"])
    np.testing.assert_array_equal(w1, data["W1"])


def test_regression_teacher_matches_reference_reading():
    w0, w1 = (m.tolist() for m in Regression.weights())
    rng = np.random.default_rng(11)
    xs = rng.standard_normal((50, 8))
    batch = Regression.teacher(xs)
    assert batch.shape == (50,)
    for x, y in zip(xs, batch):
        expected = reference_teacher(x.tolist(), w0, w1)
        assert Regression.teacher(x) == pytest.approx(expected, rel=1e-12, abs=1e-12)
        assert y == pytest.approx(expected, rel=1e-12, abs=1e-12)
    assert Regression.teacher(np.zeros(8)) == 0.0
    with pytest.raises(ValueError, match="shape"):
        Regression.teacher(np.zeros(7))


def test_regression_teacher_statistics():
    """Monte Carlo of algorithms.md §5.2: E[y] ≈ 2.13, P(y = 0) ≈ 0.425 (y ≥ 0 always)."""
    x = np.random.default_rng(2021).standard_normal((200_000, 8))
    y = Regression.teacher(x)
    assert y.min() == 0.0
    assert abs(y.mean() - 2.13) < 0.03          # standard error ≈ 0.007
    assert abs(np.mean(y == 0.0) - 0.425) < 0.01  # standard error ≈ 0.001


def test_regression_spaces_and_episode():
    env = make_env("asyncneurons/Regression-v0")
    assert env.observation_space == gym.spaces.Box(-np.inf, np.inf, (8,), np.float32)
    assert env.action_space == gym.spaces.Box(-np.inf, np.inf, (1,), np.float32)
    kind, dim, low, high = action_spec(env)
    assert (kind, dim) == ("continuous", 1)
    assert low[0] == -np.inf and high[0] == np.inf
    obs, info = env.reset(seed=0)
    assert obs.shape == (8,) and obs.dtype == np.float32
    assert set(info) == {"target"}
    assert info["target"] == pytest.approx(Regression.teacher(obs), rel=1e-6, abs=1e-6)
    assert info["target"] == float(np.float32(Regression.teacher(obs)))
    obs2, reward, terminated, truncated, info2 = env.step(np.array([0.0], np.float32))
    np.testing.assert_array_equal(obs2, obs)
    assert reward == -info["target"] ** 2 and info2 == info
    assert terminated is True and truncated is False
    with pytest.raises(gym.error.ResetNeeded):
        env.unwrapped.step(np.array([0.0], np.float32))
    with pytest.raises(gym.error.ResetNeeded):
        Regression().step(np.array([0.0], np.float32))
    fresh = Regression()
    fresh.reset(seed=0)
    with pytest.raises(ValueError, match="one number"):
        fresh.step(np.zeros(2, np.float32))
    with pytest.raises(ValueError, match="not finite"):
        fresh.step(np.array([np.nan], np.float32))


def test_regression_reward_is_negative_squared_error_and_zero_when_perfect():
    env = make_env("asyncneurons/Regression-v0")
    env.reset(seed=5)
    rng = np.random.default_rng(6)
    targets = []
    for _ in range(300):
        obs, info = env.reset()
        y = info["target"]
        targets.append(y)
        assert y == float(np.float32(Regression.teacher(obs)))
        perfect = to_env_action(env, y)                       # clip: a no-op on an infinite box
        assert perfect[0] == y and env.action_space.contains(perfect)
        _, reward, terminated, _, _ = env.step(perfect)
        assert reward == 0.0 and terminated is True
        assert np.copysign(1.0, reward) == 1.0                # +0.0, not -0.0
        env.reset()
        env.unwrapped._obs, env.unwrapped._target = obs, y    # the same sample again
        a = to_env_action(env, rng.normal(y, 2.0))
        error = float(a[0]) - y
        assert env.step(a)[1] == -(error * error)
    assert min(targets) == 0.0 and max(targets) > 0.0


def test_regression_observations_are_standard_normal():
    env = Regression()
    env.reset(seed=9)
    obs = np.array([env.reset()[0] for _ in range(4000)])
    assert np.all(np.abs(obs.mean(axis=0)) < 0.07)     # ±4.4 standard errors
    assert np.all(np.abs(obs.std(axis=0) - 1.0) < 0.05)
    assert abs(np.corrcoef(obs.T)[0, 1]) < 0.07


def test_regression_seeding_gives_identical_observations():
    def run(seed):
        env = make_env("asyncneurons/Regression-v0")
        obs, info = env.reset(seed=seed)
        out, targets = [obs], [info["target"]]
        for _ in range(20):
            env.step(np.array([1.0], np.float32))
            obs, info = env.reset()
            out.append(obs)
            targets.append(info["target"])
        return np.array(out), targets

    a, ya = run(7)
    b, yb = run(7)
    np.testing.assert_array_equal(a, b)
    assert ya == yb
    assert not np.array_equal(run(7)[0], run(8)[0])


def test_unbounded_box_actions_pass_through_clip_and_reject_affine():
    env = make_env("asyncneurons/Regression-v0")
    for raw in (0.0, -3.25, 1e6, [1e30]):
        a = to_env_action(env, raw)
        assert a.dtype == np.float32 and a.shape == (1,)
        assert a[0] == np.float32(np.asarray(raw).reshape(-1)[0])
        assert env.action_space.contains(a)
    with pytest.raises(ValueError, match="bounded action box"):
        to_env_action(env, 0.5, "affine")


# ---------------------------------------------------------------------------------------------
# The supported environments


def test_known_env_ids():
    ids = known_env_ids()
    assert ids == sorted(ids)
    assert set(ids) == {"CartPole-v1", "Acrobot-v1", "MountainCar-v0",
                        "MountainCarContinuous-v0", "LunarLander-v3",
                        "asyncneurons/Multiplexer20-v0", "asyncneurons/Multiplexer37-v0",
                        "asyncneurons/Regression-v0"}


@pytest.mark.parametrize("env_id", list(SUPPORTED))
def test_every_supported_env_makes_resets_and_steps(env_id):
    env = make_env(env_id)
    try:
        assert not isinstance(env, gym.vector.VectorEnv)
        obs, info = env.reset(seed=0)
        assert env.observation_space.contains(obs)
        spec = action_spec(env)
        if spec[0] == "discrete":
            raw = spec[1] - 1
        else:
            raw = np.full(spec[1], 0.5)
        for _ in range(3):
            action = to_env_action(env, raw)
            assert env.action_space.contains(action)
            obs, reward, terminated, truncated, info = env.step(action)
            assert np.isfinite(reward)
            if terminated or truncated:
                obs, info = env.reset()
    finally:
        env.close()


@pytest.mark.parametrize("env_id,limit", [("CartPole-v1", 500), ("Acrobot-v1", 500),
                                          ("LunarLander-v3", 1000),
                                          ("MountainCarContinuous-v0", 999)])
def test_registered_time_limits(env_id, limit):
    assert make_env(env_id).spec.max_episode_steps == limit


def test_max_episode_steps_override():
    env = make_env("CartPole-v1", max_episode_steps=3)
    env.reset(seed=0)
    flags = [env.step(i % 2)[3] for i in range(3)]
    assert flags == [False, False, True]


def test_lunar_lander_is_box2d_and_deterministic():
    def trajectory():
        env = make_env("LunarLander-v3")
        obs = [env.reset(seed=5)[0]]
        for t in range(20):
            obs.append(env.step(t % 4)[0])
        env.close()
        return np.array(obs)

    env = make_env("LunarLander-v3")
    assert action_spec(env) == ("discrete", 4)
    assert env.observation_space.shape == (8,)
    np.testing.assert_array_equal(trajectory(), trajectory())


def test_action_spec_and_mapping():
    cart = make_env("CartPole-v1")
    assert action_spec(cart) == ("discrete", 2)
    action = to_env_action(cart, np.array([1]))
    assert action == 1 and type(action) is int
    assert to_env_action(cart, np.int64(0)) == 0
    with pytest.raises(ValueError):
        to_env_action(cart, 2)

    car = make_env("MountainCarContinuous-v0")
    kind, dim, low, high = action_spec(car)
    assert (kind, dim) == ("continuous", 1)
    np.testing.assert_array_equal(low, [-1.0])
    np.testing.assert_array_equal(high, [1.0])
    for raw, expected in ((3.0, 1.0), (-7.5, -1.0), (0.25, 0.25)):
        a = to_env_action(car, raw)
        assert a.dtype == np.float32 and a.shape == (1,)
        assert a[0] == np.float32(expected)
        assert car.action_space.contains(a)


def test_unknown_env_id_suggests_the_closest():
    with pytest.raises(ScenarioError) as err:
        make_env("CartPol-v1")
    assert str(err.value) == (
        'env.id: unknown environment "CartPol-v1" (did you mean "CartPole-v1"?); shipped: '
        + ", ".join(known_env_ids()) + "; a task of your own: register it in a module named by env.import")
    with pytest.raises(ScenarioError, match=r'did you mean "LunarLander-v3"'):
        make_env("LunarLander-v2")
    with pytest.raises(ScenarioError, match=r'^env.id: unknown environment "Pong"; shipped: '):
        make_env("Pong")
