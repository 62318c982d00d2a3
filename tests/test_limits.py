"""Absurd sizes are refused up front, with an estimate, before anything is built."""

import subprocess
import sys

import pytest

from asyncneurons import limits
from asyncneurons.errors import ScenarioError, UserInputError


def test_a_network_of_a_billion_units_is_refused_with_its_memory():
    with pytest.raises(ScenarioError, match=r"network.hidden: a network of 2,000,000,002 units .* needs about .* GiB of memory; this machine has"):
        limits.check_network([4, 1_000_000_000, 1_000_000_000, 2])


def test_a_large_but_real_network_passes():
    limits.check_network([8, 1024, 1024, 4])


def test_a_sweep_of_a_million_runs_is_refused_with_its_time():
    with pytest.raises(UserInputError, match=r"1,000,000 runs is more than 100,000; at the least about .* CPU-years"):
        limits.check_sweep(1_000_000, 2336, 100_000)


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "asyncneurons.cli", *args], capture_output=True, text=True,
                          timeout=120)


def test_the_command_line_refuses_them_in_one_line(tmp_path):
    s = tmp_path / "s.toml"
    s.write_text("[network]\nhidden = [1000000000, 1000000000]\n[learning]\nlr = 0.01\n")
    r = _cli("validate", str(s))
    assert r.returncode == 2 and "GiB of memory" in r.stderr and "Traceback" not in r.stderr
    s.write_text("[network]\nhidden = [8]\n[learning]\nlr = 0.01\ncritic_lr = 0.01\n")
    seeds = ",".join(str(i) for i in range(1000))
    r = _cli("sweep", str(s), "--grid", f"timing.reward_delay={seeds}", "--seeds", "1000", "--out", str(tmp_path / "sw"))
    assert r.returncode == 2 and "CPU-years" in r.stderr and "Traceback" not in r.stderr
