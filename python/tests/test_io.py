import json

import numpy as np
import pytest

import kirzl
from kirzl import io, nn, optim


def test_checkpoint_round_trip(tmp_path):
    kirzl.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    opt = optim.AdamW(model.parameters(), lr=0.01)
    model(kirzl.ones(2, 4)).sum().backward()
    opt.step()
    path = str(tmp_path / "ckpt.safetensors")
    io.save_checkpoint(path, model, opt, step=7, epoch=2, config={"model": "mlp"})
    kirzl.manual_seed(1)
    model2 = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    opt2 = optim.AdamW(model2.parameters(), lr=0.01)
    info = io.load_checkpoint(path, model2, opt2)
    assert info.step == 7 and info.epoch == 2 and info.config == {"model": "mlp"}
    for a, b in zip(model.parameters(), model2.parameters()):
        assert np.array_equal(a.detach().numpy(), b.detach().numpy())
    assert opt2.step_count(0) == 1


def test_safetensors(tmp_path):
    path = str(tmp_path / "t.safetensors")
    io.save_safetensors(path, {"a": kirzl.arange(6).reshape(2, 3), "b": np.ones(2, np.float16)}, {"k": "v"})
    tensors, meta = io.load_safetensors(path)
    assert list(tensors) == ["a", "b"] and tensors["a"].tolist() == [[0, 1, 2], [3, 4, 5]]
    assert tensors["b"].dtype == kirzl.f16 and meta == {"k": "v"}
    assert '"a"' in io.read_safetensors_header(path)
    (tmp_path / "bad.safetensors").write_bytes(b"\x05" + b"\x00" * 7 + b"{")
    with pytest.raises(kirzl.IoError):
        io.load_safetensors(str(tmp_path / "bad.safetensors"))


def test_metrics_log(tmp_path):
    path = str(tmp_path / "m.jsonl")
    log = io.MetricsLog(path)
    log.log(step=1, epoch=0, loss=0.5, phase="train", grad_norm=1.25)
    log.log(io.MetricsRecord(step=2, accuracy=0.9).set("n", 3))
    lines = [json.loads(l) for l in open(path)]
    assert lines[0] == {"step": 1, "epoch": 0, "loss": 0.5, "phase": "train", "grad_norm": 1.25}
    assert lines[1]["accuracy"] == 0.9 and lines[1]["n"] == 3


def test_progress_and_format():
    bar = io.ProgressBar(total_steps=10, epoch=1, epochs=2, label="train", interactive=False)
    bar.update(5, 0.25, 1000.0)
    assert "5/10" in bar.line()
    assert io.format_duration(62) == "1:02" and io.format_rate(41200) == "41.2k"
