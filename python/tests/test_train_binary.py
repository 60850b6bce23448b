"""A run in Python equals the same run through the `train` binary, bit for bit."""

import json
import subprocess

import numpy as np

import clockwork as cw


def test_python_run_equals_train_binary(tmp_path, train_bin):
    cfg = cw.Config.preset("default").with_(
        {
            "task.p": 23,
            "model.width": 96,
            "models": 2,
            "per_model.seed": [0, 5],
            "train.steps": 300,
            "train.eval_every": 100,
            "train.checkpoint_every": 300,
            "optimizer.lr_milestones": [100, 200],
        }
    )
    toml = tmp_path / "run.toml"
    toml.write_text(cfg.to_toml())
    run = tmp_path / "run"
    out = subprocess.run(
        [str(train_bin), "--config", str(toml), "--out", str(run)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert cw.Config.from_file(run / "config.toml") == cfg

    t = cw.Trainer(cfg)
    t.step(300)
    ev = t.evaluate()
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    last = {r["model"]: r for r in rows if r["step"] == 300}
    for k in range(2):
        assert last[k]["train_loss"] == ev["train_loss"][k]  # identical, not close
        assert last[k]["train_acc"] == ev["train_acc"][k]
        assert last[k]["margin"] == ev["margin"][k]
    ck = cw.load_checkpoint(run / "checkpoints" / "step-00000300.safetensors")
    U, V, W = t.weights(None)
    assert U.dtype == np.float32
    assert np.array_equal(ck["u"], U.astype(np.float64))
    assert np.array_equal(ck["v"], V.astype(np.float64))
    assert np.array_equal(ck["w"], W.astype(np.float64))
    # And a resume of the binary's checkpoint continues where Python's trainer is.
    r = cw.Trainer.from_checkpoint(run / "checkpoints" / "step-00000300.safetensors")
    assert r.step(5) == t.step(5)
