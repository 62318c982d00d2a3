"""Tasks: our multiplexer environments and the gymnasium environments a scenario may name."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import asyncneurons.tasks as tasks
from asyncneurons.errors import ScenarioError
from asyncneurons.tasks import (SUPPORTED, action_spec, known_env_ids, make_env,
                                to_env_action)
from asyncneurons.tasks.multiplexer import Multiplexer

# Box2D's SWIG bindings warn on import (LunarLander); not ours to fix.
pytestmark = pytest.mark.filterwarnings(
    "ignore:builtin type .* has no __module__ attribute:DeprecationWarning")

OWN_IDS = sorted(i for i in gym.registry if i.startswith("asyncneurons/"))
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


def test_both_multiplexers_are_registered():
    assert OWN_IDS == ["asyncneurons/Multiplexer20-v0", "asyncneurons/Multiplexer37-v0"]
    assert gym.make("asyncneurons/Multiplexer20-v0").unwrapped.k == 4
    assert gym.make("asyncneurons/Multiplexer37-v0").unwrapped.k == 5


@pytest.mark.parametrize("env_id", OWN_IDS)
def test_env_checker_passes(env_id):
    env = gym.make(env_id)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
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


@pytest.mark.parametrize("env_id", OWN_IDS)
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
# The supported environments


def test_known_env_ids():
    ids = known_env_ids()
    assert ids == sorted(ids)
    assert set(ids) == {"CartPole-v1", "Acrobot-v1", "MountainCar-v0",
                        "MountainCarContinuous-v0", "LunarLander-v3",
                        "asyncneurons/Multiplexer20-v0", "asyncneurons/Multiplexer37-v0"}


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
        make_env("CartPole-v0")
    assert str(err.value) == (
        'env.id: unknown environment "CartPole-v0" (did you mean "CartPole-v1"?); known: '
        + ", ".join(known_env_ids()))
    with pytest.raises(ScenarioError, match=r'did you mean "LunarLander-v3"'):
        make_env("LunarLander-v2")
    with pytest.raises(ScenarioError, match=r'^env.id: unknown environment "Pong"; known: '):
        make_env("Pong")
