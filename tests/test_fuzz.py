"""A CI-sized slice of the fuzzer (scripts/fuzz.py; the full run is 10,000 cases, see
docs/reliability.md): every generated case ends with an exit status and one error line, never a
traceback, and no refused command changes its folder."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_a_slice_of_the_fuzzer_keeps_every_promise(tmp_path):
    report = tmp_path / "report.json"
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "fuzz.py"), "--cases", "160", "--seed", "11",
                        "--spot", "80", "--report", str(report)], capture_output=True, text=True, timeout=900)
    result = json.loads(report.read_text())
    assert result["failures"] == [], r.stdout[-3000:]
    assert r.returncode == 0
    counts = result["counts"]
    assert sum(c["cases"] for c in counts.values()) == 160
    assert set(counts) == {"flags", "scenario files", "graph files", "run folders"}
    assert sum(c["real processes"] for c in counts.values()) == 2
    assert all(c["exit 2"] > 0 for c in counts.values())  # bad input is refused, status 2
