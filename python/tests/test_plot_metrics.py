"""scripts/plot_metrics.py on a small metrics log: the PNGs it writes, and the fields they need."""
import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("matplotlib")

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts", "plot_metrics.py")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run(tmp_path, records, *extra):
    log = tmp_path / "metrics.jsonl"
    log.write_text("".join(json.dumps(r) + "\n" if isinstance(r, dict) else r for r in records))
    return subprocess.run([sys.executable, SCRIPT, str(log), "-o", str(tmp_path / "out"), *extra],
                          capture_output=True, text=True)


def written(tmp_path):
    return sorted(p.name for p in tmp_path.glob("out-*.png"))


def test_a_data_parallel_log_gives_loss_throughput_and_communication(tmp_path):
    log = [{"step": s, "epoch": 0, "loss": 2.3 / s, "samples_per_second": 1000 + s,
            "comm_hidden_ms": 0.5, "comm_exposed_ms": 0.25} for s in range(10, 60, 10)]
    log.append({"step": 50, "epoch": 0, "loss": 0.5, "accuracy": 0.8, "split": "test"})
    r = run(tmp_path, log)
    assert r.returncode == 0, r.stderr
    assert written(tmp_path) == ["out-communication.png", "out-loss.png", "out-throughput.png"]
    for name in written(tmp_path):
        data = (tmp_path / name).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 2000, name
    assert r.stdout.count("wrote ") == 3


def test_only_the_plots_the_log_has_fields_for(tmp_path):
    # A GPT-style log: loss and tokens/s, validation lines, no communication (one process).
    log = [{"step": s, "loss": 3.0 - s / 100, "tokens_per_second": 2e4} for s in (10, 20, 30)]
    log += ["\n", {"step": 30, "loss": 2.9, "split": "val"}]
    r = run(tmp_path, log)
    assert r.returncode == 0, r.stderr
    assert written(tmp_path) == ["out-loss.png", "out-throughput.png"]


def test_zero_communication_is_not_drawn(tmp_path):
    log = [{"step": s, "loss": 1.0, "comm_hidden_ms": 0.0, "comm_exposed_ms": 0.0} for s in (1, 2)]
    r = run(tmp_path, log)
    assert r.returncode == 0, r.stderr
    assert written(tmp_path) == ["out-loss.png"]


@pytest.mark.parametrize("bad, message", [('{"step": 1, "loss": 1.0}\n{"step": 2, "loss"\n', "metrics.jsonl:2: not a JSON line"),
                                          ('[1, 2]\n', "metrics.jsonl:1: expected an object with a 'step' field"),
                                          ("", "holds no records")])
def test_a_malformed_log_is_an_error_naming_the_line(tmp_path, bad, message):
    r = run(tmp_path, [bad])
    assert r.returncode != 0
    assert message in r.stderr
    assert written(tmp_path) == []
