"""The reproduction script: runs a published set (tiny here), resumes, writes the report."""

import subprocess
import sys
from pathlib import Path

import matplotlib.image as mpimg

ROOT = Path(__file__).resolve().parents[1]


def _reproduce(*args):
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "reproduce.py"), *args], capture_output=True,
                          text=True, timeout=600)


def test_a_tiny_reproduction_writes_the_table_and_the_curves(tmp_path):
    out, docs = tmp_path / "runs", tmp_path / "docs"
    args = ["weight-max", "--only", "cartpole,acrobot", "--runs", "3", "--episodes", "4", "--workers", "2",
            "--out", str(out), "--docs", str(docs)]
    r = _reproduce(*args)
    assert r.returncode == 0, r.stderr
    report = (docs / "weight-max.md").read_text()
    assert "| CartPole-v1 | 390.38 (43.25) |" in report and "| 3/3 |" in report
    assert "| LunarLander | 111.23 (16.58) | not run yet | 0/3 |" in report
    image = mpimg.imread(docs / "figures" / "weight-max-cartpole.png")
    assert image.shape[0] > 300 and image.shape[1] > 500
    first = (docs / "weight-max.md").read_text()
    again = _reproduce(*args)  # everything is finished: nothing runs again, the same report
    assert again.returncode == 0 and "0 runs to do" in again.stdout
    assert (docs / "weight-max.md").read_text() == first
