"""A Dask scheduler address that is malformed or does not answer fails in seconds, in one line,
and a malformed one before the sweep folder is touched."""

import socket
import subprocess
import sys

import pytest

SMALL = """
[experiment]
name = "cluster"
episodes = 2

[network]
hidden = [4]

[learning]
lambda = 0.8
lr = [0.01, 0.001]
"""


def sweep(tmp_path, address):
    (tmp_path / "s.toml").write_text(SMALL)
    return subprocess.run([sys.executable, "-m", "asyncneurons.cli", "sweep", str(tmp_path / "s.toml"),
                           "--out", str(tmp_path / "sweep"), "--scheduler", address, "--quiet"],
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("address", ["nonsense", "tcp://[bad", "tcp://host:99999999", "http://x:1/a b"])
def test_a_malformed_scheduler_address_is_one_line_before_anything_is_written(tmp_path, address):
    r = sweep(tmp_path, address)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines() == [f"error: --scheduler {address!r}: not a scheduler address "
                                             f"(expected tcp://HOST:PORT)"]
    assert not (tmp_path / "sweep").exists()


def test_an_unreachable_scheduler_is_one_line_after_the_connect_timeout(tmp_path):
    with socket.socket() as s:  # a port that nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = sweep(tmp_path, f"tcp://127.0.0.1:{port}")  # (the subprocess timeout bounds the wait)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: --scheduler tcp://127.0.0.1:{port}: no Dask scheduler answered within 5 s "
                      f"(OSError); check the address and that the scheduler runs"]
