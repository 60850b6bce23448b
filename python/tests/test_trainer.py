"""clockwork.Trainer: stepping, evaluation, weights in and out, state, checkpoints."""

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

import clockwork as cw


def test_step_and_evaluate(small):
    t = cw.Trainer(small)
    r = t.step()
    assert r["step"] == 0 and len(r["train_loss"]) == 1 and np.isfinite(r["train_loss"][0])
    r = t.step(9)
    assert r["step"] == 9 and t.steps_done == 10
    e = t.evaluate()
    assert e["step"] == 10
    assert e["test_loss"] == [None] and e["test_acc"] == [None]
    assert e["gamma_star"] == [pytest.approx(cw.gamma_star(23))]
    assert e["gamma_ratio"][0] == pytest.approx(e["margin"][0] / e["gamma_star"][0])
    assert 0 <= e["train_acc"][0] <= 1 and e["lr"] == [0.05]
    assert t.gamma_star == e["gamma_star"]
    assert "cpu" in t.describe() and "Trainer(" in repr(t)
    assert t.config == small


def test_split_models_report_test_metrics(small):
    c = small.with_({"models": 2, "per_model.train_fraction": [1.0, 0.5]})
    t = cw.Trainer(c)
    t.step(3)
    e = t.evaluate()
    assert e["test_loss"][0] is None and e["test_loss"][1] is not None
    assert e["gamma_star"] == [pytest.approx(cw.gamma_star(23)), None]


def test_bad_step_counts(small):
    t = cw.Trainer(small)
    for n in (0, -3):
        with pytest.raises(cw.ConfigError) as e:
            t.step(n)
        assert e.value.key == "n"
    with pytest.raises(TypeError):
        t.step("ten")
    assert t.steps_done == 0


def test_weights_orientation_matches_the_parameters(small):
    t = cw.Trainer(small)
    U, V, W = t.weights()
    p, m = 23, 96
    assert U.shape == (m, p) and V.shape == (m, p) and W.shape == (p, m) and U.dtype == np.float64
    params = t.state()["params"][0]  # storage order: u (p × m), v (p × m), w (p × m)
    assert np.array_equal(U, params[: p * m].reshape(p, m).T)
    assert np.array_equal(V, params[p * m : 2 * p * m].reshape(p, m).T)
    assert np.array_equal(W, params[2 * p * m :].reshape(p, m))
    # Copies: stepping does not change arrays already handed out.
    before = U.copy()
    t.step(2)
    assert np.array_equal(U, before) and not np.array_equal(t.weights()[0], before)


def test_batched_weights_and_model_index(small):
    t = cw.Trainer(small.with_(models=3))
    U, V, W = t.weights(None)
    assert U.shape == (3, 96, 23) and W.shape == (3, 23, 96)
    for k in range(3):
        u, v, w = t.weights(k)
        assert np.array_equal(u, U[k]) and np.array_equal(v, V[k]) and np.array_equal(w, W[k])
    for bad in (3, -1):
        with pytest.raises(cw.ShapeError) as e:
            t.weights(bad)
        assert e.value.what == "model"


def test_f32_trainer_returns_f32(small):
    t = cw.Trainer(small.with_(dtype="f32"))
    assert all(x.dtype == np.float32 for x in t.weights())
    assert t.state()["params"].dtype == np.float32


def test_set_weights_round_trip(small):
    t = cw.Trainer(small.with_(models=2))
    rng = np.random.default_rng(0)
    U, V = rng.normal(size=(2, 96, 23))
    W = rng.normal(size=(23, 96))
    t.set_weights(U, V, W, model=1)
    u, v, w = t.weights(1)
    assert np.array_equal(u, U) and np.array_equal(v, V) and np.array_equal(w, W)
    # Lists and other dtypes are converted.
    t.set_weights(U.tolist(), V.astype(np.float32), W, model=0)
    assert np.array_equal(t.weights(0)[1], V.astype(np.float32).astype(np.float64))
    assert t.steps_done == 0


def test_set_weights_bad_input(small):
    t = cw.Trainer(small)
    U, V, W = t.weights()
    with pytest.raises(cw.ShapeError) as e:
        t.set_weights(U[:, :5], V, W)
    assert e.value.what == "u" and "96×23" in e.value.expected
    with pytest.raises(cw.ShapeError):
        t.set_weights(U, V, W.T)
    with pytest.raises(cw.ShapeError):
        t.set_weights(U[0], V, W)
    with pytest.raises(TypeError, match="u: expected a real-valued array"):
        t.set_weights([["a"]], V, W)
    with pytest.raises(TypeError):
        t.set_weights(U.astype(complex), V, W)
    bad = U.copy()
    bad[3, 4] = np.nan
    with pytest.raises(cw.ConfigError, match="finite"):
        t.set_weights(bad, V, W)
    with pytest.raises(cw.ShapeError):
        t.set_weights(U, V, W, model=1)
    tied = cw.Trainer(small.with_(tied=True))
    u, v, w = tied.weights()
    tied.set_weights(u * 2, u * 2, w)
    with pytest.raises(cw.ConfigError) as e:
        tied.set_weights(u, u + 1, w)
    assert e.value.key == "model.tied"
    factored = cw.Trainer(small.with_(embed_dim=8))
    with pytest.raises(cw.ConfigError) as e:
        factored.set_weights(*factored.weights())
    assert e.value.key == "model.embed_dim"


def test_state_round_trip_continues_identically(small):
    a = cw.Trainer(small.with_({"optimizer.kind": "adamw", "optimizer.lr": 1e-3}))
    a.step(5)
    s = a.state()
    assert s["step"] == 5 and s["adam_m"].shape == s["params"].shape
    assert s["grokfast_ema"].shape == (0,)
    assert s["grokfast_window"].shape == (0,)
    b = cw.Trainer(a.config)
    b.load_state(s)
    assert b.steps_done == 5
    ra, rb = a.step(4), b.step(4)
    assert ra == rb
    assert all(np.array_equal(x, y) for x, y in zip(a.weights(), b.weights()))


def test_grokfast_ma_state_round_trip_continues_identically(small):
    cfg = small.with_({"optimizer.grokfast": "ma", "optimizer.grokfast_window": 4,
                       "optimizer.grokfast_lambda": 5.0})
    a = cw.Trainer(cfg)
    a.step(6)
    s = a.state()
    b_, n = s["params"].shape
    assert s["grokfast_window"].shape == (b_, 4, n)
    b = cw.Trainer(a.config)
    b.load_state(s)
    ra, rb = a.step(3), b.step(3)
    assert ra == rb
    assert all(np.array_equal(x, y) for x, y in zip(a.weights(), b.weights()))


def test_load_state_bad_input(small):
    t = cw.Trainer(small)
    s = t.state()
    with pytest.raises(KeyError, match="params"):
        t.load_state({"step": 0})
    with pytest.raises(cw.ShapeError) as e:
        t.load_state({**s, "params": s["params"][:, :10]})
    assert "params" in e.value.what
    with pytest.raises(cw.ShapeError):
        t.load_state({**s, "adam_m": np.zeros(7)})
    with pytest.raises(cw.ConfigError):
        t.load_state({**s, "step": -1})
    with pytest.raises(TypeError):
        t.load_state({**s, "params": "x"})


def test_save_and_resume_from_checkpoint(small, tmp_path):
    a = cw.Trainer(small)
    a.step(7)
    path = tmp_path / "ck.safetensors"
    a.save(path)
    b = cw.Trainer.from_checkpoint(path, device="cpu")
    assert b.steps_done == 7 and b.config == small
    assert a.step(3) == b.step(3)
    ck = cw.load_checkpoint(path)
    assert ck["step"] == 7 and ck["dtype"] == "f64" and ck["u"].shape == (1, 96, 23)


def test_checkpoint_errors(small, tmp_path):
    with pytest.raises(cw.FileIOError):
        cw.Trainer.from_checkpoint(tmp_path / "none.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(cw.BadFileError):
        cw.Trainer.from_checkpoint(junk)
    t = cw.Trainer(small)
    good = tmp_path / "good.safetensors"
    t.save(good)
    data = bytearray(good.read_bytes())
    data[-10] ^= 0xFF  # a flipped byte inside the tensor data
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(bytes(data))
    with pytest.raises(cw.BadFileError, match="damaged"):
        cw.load_checkpoint(bad)
    with pytest.raises(cw.ConfigError):
        cw.Trainer.from_checkpoint(good, device="gpu")


def test_divergence_raises_and_keeps_last_good(small):
    t = cw.Trainer(small.with_(lr=1e6, lr_milestones=[], init_scale=3.0))
    with pytest.raises(cw.DivergedError) as e:
        t.step(50)
    assert isinstance(e.value, ArithmeticError) and e.value.model == 0
    assert t.steps_done == e.value.step
    assert all(np.isfinite(x).all() for x in t.weights())


def test_cuda_is_refused_cleanly_without_a_gpu(small):
    try:
        t = cw.Trainer(small.with_(device="cuda", dtype="f32"))
    except cw.BackendError as e:
        assert isinstance(e, RuntimeError) and str(e)
    else:  # a machine with a GPU: it must train
        assert np.isfinite(t.step(2)["train_loss"][0])


def test_gil_is_released_during_step():
    # p = 71, width 500 steps take ~10 ms: a second thread counts while step(n) runs.
    t = cw.Trainer(cw.Config.preset("blog-x2").with_(steps=1000))
    count, stop = [0], threading.Event()

    def spin():
        while not stop.is_set():
            count[0] += 1

    th = threading.Thread(target=spin)
    th.start()
    try:
        time.sleep(0.05)
        start = count[0]
        t.step(1)  # one call, one chunk: no GIL between steps
        during_one = count[0] - start
        start = count[0]
        t.step(20)
        during = count[0] - start
    finally:
        stop.set()
        th.join()
    # With the GIL held for the whole call, the counter could advance by at most a
    # switch interval's worth at the call's edges; released, it runs the whole time.
    assert during_one > 1000, during_one
    assert during > 20_000, during


def test_other_threads_get_a_clean_error(small):
    t = cw.Trainer(small)
    seen = []

    def use():
        for call in (lambda: t.step(1), t.evaluate, t.weights, t.state, lambda: t.steps_done, repr):
            try:
                call() if call is not repr else repr(t)
            except RuntimeError as e:  # not a Rust panic (PanicException is a BaseException)
                seen.append(str(e))

    th = threading.Thread(target=use)
    th.start()
    th.join()
    assert len(seen) == 6 and all("belongs to the thread that made it" in m for m in seen)
    assert t.step(1)["step"] == 0  # the owner still uses it


def test_ctrl_c_interrupts_a_long_step():
    script = textwrap.dedent(
        """
        import os, signal, threading, time, clockwork as cw
        signal.signal(signal.SIGINT, signal.default_int_handler)  # as conftest.py says
        t = cw.Trainer(cw.Config.preset("blog-x2"))
        threading.Timer(1.0, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
        t0 = time.perf_counter()
        try:
            t.step(100000)
        except KeyboardInterrupt:
            print("interrupted", t.steps_done, round(time.perf_counter() - t0, 3), flush=True)
            t.step(1)  # still usable
            print("resumed", t.steps_done)
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    words = out.stdout.split()
    assert words[0] == "interrupted", out.stdout
    done, elapsed = int(words[1]), float(words[2])
    assert 0 < done < 100000 and elapsed < 5, out.stdout
    assert words[3:] == ["resumed", str(done + 1)]
