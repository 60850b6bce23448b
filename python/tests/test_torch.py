"""PyTorch interop and the parity of one step with a plain PyTorch model (f64, 1e-10)."""

import numpy as np
import pytest

import clockwork as cw

torch = pytest.importorskip("torch")
ct = pytest.importorskip("clockwork.torch")

P, M = 23, 96


def deterministic_weights():
    """benches/reference/torch_cpu_step.py --check's init (U, V: m × p; W: p × m)."""
    i = np.arange(1, M + 1)[:, None]
    t = np.arange(1, P + 1)[None, :]
    U = 0.3 * np.sin(0.1 * i * t)
    V = 0.3 * np.cos(0.07 * i * t)
    W = (0.3 * np.sin(0.05 * i * t + 1)).T
    return U, V, W


def rel(a, b):
    return float(np.abs(np.asarray(a) - np.asarray(b)).max() / np.abs(np.asarray(b)).max())


@pytest.mark.parametrize("reg", ["l23", "l2"])
def test_one_step_equals_plain_pytorch(reg):
    cfg = cw.Config(
        {
            "task.p": P,
            "model.width": M,
            "dtype": "f64",
            "train.regularizer": reg,
            "train.reg_strength": 1e-4,
            "optimizer.lr": 0.05,
            "optimizer.lr_milestones": [],
        }
    )
    U, V, W = deterministic_weights()
    t = cw.Trainer(cfg)
    t.set_weights(U, V, W)
    report = t.step(1)

    net = ct.from_weights(U, V, W)
    opt = torch.optim.SGD(net.parameters(), lr=0.05)
    ce, r = ct.objective(net, reg=reg, reg_strength=1e-4)
    opt.zero_grad()
    (ce + r).backward()
    opt.step()

    assert abs(report["train_loss"][0] - ce.item()) <= 1e-10 * ce.item()
    assert abs(report["reg_loss"][0] - r.item()) <= 1e-10 * r.item()
    for got, want in zip(t.weights(), (net.U, net.V, net.W)):
        assert rel(got, want.detach().numpy()) < 1e-10


def test_checkpoint_to_module_and_back(tmp_path):
    cfg = cw.Config(p=P, width=M, dtype="f64", steps=50)
    t = cw.Trainer(cfg)
    t.step(50)
    path = tmp_path / "a.safetensors"
    t.save(path)
    net = ct.from_checkpoint(path)
    assert isinstance(net, torch.nn.Module) and net.U.shape == (M, P) and net.W.shape == (P, M)
    U, V, W = t.weights()
    assert np.array_equal(net.U.detach().numpy(), U) and np.array_equal(net.W.detach().numpy(), W)
    # The module computes what the engine computes: same accuracy over all pairs.
    a, b, y = ct.all_pairs(P)
    with torch.no_grad():
        acc = (net(a, b).argmax(-1) == y).double().mean().item()
    assert acc == pytest.approx(t.evaluate()["train_acc"][0], abs=1e-12)
    # Edit in PyTorch (zero one neuron), write back, read with clockwork.
    with torch.no_grad():
        net.W[:, 3] = 0
    back = tmp_path / "b.safetensors"
    ct.save(net, back, cfg)
    ck = cw.load_checkpoint(back)
    assert np.array_equal(ck["w"][0], net.W.detach().numpy()) and (ck["w"][0][:, 3] == 0).all()
    ct.to_trainer(net, t)
    assert np.array_equal(t.weights()[2], net.W.detach().numpy())
    same = ct.from_trainer(t)
    assert torch.equal(same.W, net.W)
    # Default config for save: the module's own shape.
    ct.save(net, tmp_path / "c.safetensors")
    assert cw.load_checkpoint(tmp_path / "c.safetensors")["config"].width == M


def test_torch_interop_bad_input(tmp_path):
    with pytest.raises(cw.ConfigError):
        ct.ClockworkMLP(P, M, activation="tanh")
    with pytest.raises(cw.ConfigError):
        ct.all_pairs(P, op="pow")
    with pytest.raises(cw.ConfigError):
        ct.from_weights(np.zeros((M, P)), np.zeros((M, P)), np.zeros((P, M + 1)))
    with pytest.raises(cw.FileIOError):
        ct.from_checkpoint(tmp_path / "none.safetensors")
    net = ct.ClockworkMLP(P, M)
    with pytest.raises(cw.ShapeError):
        ct.save(net, tmp_path / "x.safetensors", cw.Config(p=P, width=M + 1))
    with pytest.raises(cw.ConfigError):
        ct.objective(net, reg="l1")


def test_all_pairs_labels():
    a, b, y = ct.all_pairs(7, "div")
    assert ((y * b) % 7 == a).all() and len(a) == 42
    a, b, y = ct.all_pairs(7, "quad")
    assert (y == (a * a + a * b + b * b) % 7).all()
