"""Absurd sizes are refused up front, with an estimate, before anything is built."""

import subprocess
import sys

import pytest

from asyncneurons.model import limits
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


def test_the_bytes_per_synapse_assumed_are_those_measured():
    """tracemalloc over two networks: the assumed bytes per actor synapse are within a factor
    1.5 of the measured ones (the difference of the peaks over the difference of synapses)."""
    import tracemalloc

    from asyncneurons.model.scenario import parse_scenario
    from asyncneurons.engine.simulation import Simulation
    peaks = []
    for hidden in ([16, 8], [256, 128]):
        s = parse_scenario({"experiment": {"name": "m", "episodes": 1, "seed": 1},
                            "network": {"hidden": hidden},
                            "learning": {"rule": "weight_max", "lambda": 0.8, "lr": 0.01}})
        tracemalloc.start()
        sim = Simulation(s, 0, max_ticks=20)
        sim.run()
        peaks.append((sim.graph.number_of_edges(), tracemalloc.get_traced_memory()[1]))
        tracemalloc.stop()
    measured = (peaks[1][1] - peaks[0][1]) / (peaks[1][0] - peaks[0][0])
    assert measured / 1.5 < limits.BYTES_PER_SYNAPSE < measured * 1.5


def _scenario(**over):
    from asyncneurons.model.scenario import parse_scenario
    d = {"experiment": {"name": "m", "episodes": 1}, "network": {"hidden": [64, 32]},
         "learning": {"lambda": 0.8, "lr": 0.01}}
    for section, values in over.items():
        d.setdefault(section, {}).update(values)
    return parse_scenario(d)


GiB = 2 ** 30


def test_the_critic_replicas_and_runs_are_sized_and_the_key_at_fault_named():
    with pytest.raises(ScenarioError, match=r"learning.critic_hidden: .* critic of 10,000,500,000 needs about"):
        limits.check_scenario(_scenario(learning={"critic_hidden": [100_000, 100_000], "critic_lr": 0.01}),
                              2336, 4, memory=GiB)
    s = _scenario(experiment={"runs": 64}, engine={"replicas": 64})
    limits.check_scenario(s, 1_000_000, 4, memory=64 * GiB)  # one replica fits, 64 of them too
    with pytest.raises(ScenarioError, match=r"engine.replicas: .*64 replicas together"):
        limits.check_scenario(s, 1_000_000, 4, memory=8 * GiB)
    with pytest.raises(ScenarioError, match=r"network.hidden: an actor of 10,000,000 synapses"):
        limits.check_scenario(_scenario(), 10_000_000, 4, memory=GiB)
    with pytest.raises(ScenarioError, match=r"experiment.runs: 1,000,000 runs"):
        limits.check_scenario(_scenario(experiment={"runs": 1_000_000}), 2336, 4)


def test_a_graph_file_is_sized_before_it_is_read():
    with pytest.raises(ScenarioError, match=r"network.graph: reading the graph file big.graphml \(100,000,000 bytes\)"):
        limits.check_graph_file("big.graphml", 100_000_000, "graphml", memory=GiB)
    limits.check_graph_file("small.json", 1_000_000, "json", memory=GiB)


def test_a_huge_critic_is_refused_by_the_command_line_in_one_line(tmp_path):
    s = tmp_path / "s.toml"
    s.write_text("[network]\nhidden = [8]\n[learning]\nlr = 0.01\ncritic_lr = 0.01\n"
                 "critic_hidden = [1000000, 1000000]\n")
    r = _cli("validate", str(s))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.startswith("error: learning.critic_hidden:") and "GiB of memory" in r.stderr
