"""PyTorch interop: clockwork's model as a ``torch.nn.Module``, filled from a
checkpoint or a trainer and written back.

The model is small enough to state in full: ``logits(a, b) = W σ(U[:, a] + V[:, b])``
with ``U``, ``V`` of shape ``m × p`` (row i is neuron i's embedding) and ``W`` of shape
``n_out × m``: exactly the tensors ``u``, ``v``, ``w`` of a checkpoint (safetensors,
``[B, m, p]``, ``[B, m, p]``, ``[B, n_out, m]``; :func:`clockwork.load_checkpoint`
reads them with their checksums verified, ``safetensors.torch.load_file`` reads them
too). So a model trained by clockwork can be inspected, ablated or fine-tuned with the
user's own PyTorch code, and a module can be handed back to clockwork for analysis or
further training.

>>> import clockwork as cw, clockwork.torch as ct
>>> net = ct.from_checkpoint("runs/blog-x2/checkpoints/step-00040000.safetensors")
>>> a, b, y = ct.all_pairs(net.p)
>>> (net(a, b).argmax(-1) == y).double().mean()      # accuracy over all p² pairs
>>> ct.save(net, "edited.safetensors", cw.Config.preset("blog-x2"))  # back to clockwork

Needs ``torch`` (not a dependency of the package: ``pip install torch``).
"""

from __future__ import annotations

from typing import Optional, Tuple, Union

import numpy as np
import torch
from torch import nn

from . import Config, Trainer, load_checkpoint, save_weights
from .errors import ConfigError

__all__ = [
    "ClockworkMLP",
    "all_pairs",
    "from_weights",
    "from_checkpoint",
    "from_trainer",
    "to_trainer",
    "save",
    "objective",
]


def _activation(name: str):
    if name in ("square", "x2", "x^2", "pow2"):
        return lambda x: x * x
    if name == "relu":
        return torch.relu
    for prefix in ("pow", "x^"):
        if name.startswith(prefix) and name[len(prefix):].isdigit() and int(name[len(prefix):]) >= 1:
            k = int(name[len(prefix):])
            return lambda x: x**k
    raise ConfigError(
        f"invalid activation = {name}: expected square, relu or powK with K >= 1 (e.g. pow3)",
        "activation",
        name,
        "expected square, relu or powK with K >= 1 (e.g. pow3)",
    )


class ClockworkMLP(nn.Module):
    """clockwork's two-layer MLP in PyTorch: ``forward(a, b)`` gives the logits
    ``W σ(U[:, a] + V[:, b])`` of a batch of input pairs, shape ``(N, n_out)``.

    Parameters ``U`` (``m × p``), ``V`` (``m × p``) and ``W`` (``n_out × m``) are the
    paper orientation clockwork's checkpoints and ``Trainer.weights()`` use.
    """

    def __init__(
        self,
        p: int,
        width: int,
        n_out: Optional[int] = None,
        activation: str = "square",
        dtype: torch.dtype = torch.float64,
    ):
        super().__init__()
        n_out = p if n_out is None else n_out
        self.p, self.width, self.n_out, self.activation = p, width, n_out, activation
        self._sigma = _activation(activation)
        self.U = nn.Parameter(torch.zeros(width, p, dtype=dtype))
        self.V = nn.Parameter(torch.zeros(width, p, dtype=dtype))
        self.W = nn.Parameter(torch.zeros(n_out, width, dtype=dtype))

    def hidden(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """The hidden activations ``σ(u_i[a] + v_i[b])``, shape ``(N, m)``."""
        return self._sigma(self.U[:, a].T + self.V[:, b].T)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.hidden(a, b) @ self.W.T

    def extra_repr(self) -> str:
        return f"p={self.p}, width={self.width}, n_out={self.n_out}, activation={self.activation}"


def all_pairs(p: int, op: str = "add") -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Every pair ``(a, b)`` of Z_p in row-major order (clockwork's order) and its label,
    for ``op`` in add, sub, mul (``a/b`` needs a prime p and skips b = 0; quad is
    a² + ab + b²)."""
    a = torch.arange(p).repeat_interleave(p)
    b = torch.arange(p).repeat(p)
    if op == "add":
        y = (a + b) % p
    elif op == "sub":
        y = (a - b) % p
    elif op == "mul":
        y = (a * b) % p
    elif op == "quad":
        y = (a * a + a * b + b * b) % p
    elif op == "div":
        keep = b != 0
        a, b = a[keep], b[keep]
        y = (a * torch.tensor([pow(int(x), p - 2, p) for x in b.tolist()])) % p
    else:
        raise ConfigError(
            f"invalid op = {op}: expected one of add, sub, mul, div, quad",
            "op",
            op,
            "expected one of add, sub, mul, div, quad",
        )
    return a, b, y


def _tensor(x, dtype) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x), dtype=dtype)


def from_weights(
    U, V, W, activation: str = "square", dtype: torch.dtype = torch.float64
) -> ClockworkMLP:
    """A module holding copies of ``U`` (``m × p``), ``V`` (``m × p``), ``W``
    (``n_out × m``), e.g. ``from_weights(*trainer.weights())``."""
    U, V, W = (_tensor(x, dtype) for x in (U, V, W))
    if U.ndim != 2 or V.shape != U.shape or W.ndim != 2 or W.shape[1] != U.shape[0]:
        raise ConfigError(
            f"invalid weights = {tuple(U.shape)}, {tuple(V.shape)}, {tuple(W.shape)}: "
            "expected U, V of shape m × p and W of shape n_out × m",
            "weights",
            f"{tuple(U.shape)}, {tuple(V.shape)}, {tuple(W.shape)}",
            "expected U, V of shape m × p and W of shape n_out × m",
        )
    net = ClockworkMLP(U.shape[1], U.shape[0], W.shape[0], activation, dtype)
    with torch.no_grad():
        net.U.copy_(U)
        net.V.copy_(V)
        net.W.copy_(W)
    return net


def from_checkpoint(path, model: int = 0, dtype: torch.dtype = torch.float64) -> ClockworkMLP:
    """Model ``model`` of a clockwork checkpoint (checksums verified) as a module, with
    the activation of the run's config."""
    ckpt = load_checkpoint(path)
    b = ckpt["u"].shape[0]
    if not 0 <= model < b:
        raise IndexError(f"model {model}: the checkpoint holds {b} model(s)")
    act = ckpt["config"]["model.activation"]
    return from_weights(ckpt["u"][model], ckpt["v"][model], ckpt["w"][model], act, dtype)


def from_trainer(trainer: Trainer, model: int = 0, dtype: torch.dtype = torch.float64) -> ClockworkMLP:
    """Model ``model`` of a trainer as a module (a copy of its current weights)."""
    act = trainer.config["model.activation"]
    return from_weights(*trainer.weights(model), activation=act, dtype=dtype)


def _numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().to(torch.float64).numpy()


def to_trainer(net: ClockworkMLP, trainer: Trainer, model: int = 0) -> None:
    """Writes the module's U, V, W into model ``model`` of ``trainer``
    (``Trainer.set_weights``; step count and optimizer state kept)."""
    trainer.set_weights(_numpy(net.U), _numpy(net.V), _numpy(net.W), model)


def save(net: ClockworkMLP, path, config: Union[Config, None] = None, step: int = 0) -> None:
    """Writes the module as a clockwork checkpoint (weights only, checksummed) that
    ``clockwork.load_checkpoint``, ``clockwork.analyze`` (inside a run directory) and
    ``analyze`` read. ``config`` describes the run (default: the ``default`` preset at
    the module's p, width and activation, one model)."""
    if config is None:
        config = Config().with_(
            {"task.p": net.p, "model.width": net.width, "model.activation": net.activation, "models": 1}
        )
    save_weights(path, config, _numpy(net.U), _numpy(net.V), _numpy(net.W), step)


def objective(
    net: ClockworkMLP,
    op: str = "add",
    reg: str = "l23",
    reg_strength: float = 0.0,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """clockwork's training objective of the module over every pair: ``(data loss,
    regularizer)``: mean softmax cross-entropy over the p² pairs, and ``reg_strength ×
    Σ_i (‖u_i‖² + ‖v_i‖² + ‖w_i‖²)^{3/2}`` (``reg="l23"``) or ``× ½ Σ_i (...)``
    (``reg="l2"``), as src/regularizer.rs defines them. A plain-PyTorch reference for clockwork's step."""
    a, b, y = all_pairs(net.p, op)
    ce = nn.functional.cross_entropy(net(a, b), y)
    norms = net.U.pow(2).sum(1) + net.V.pow(2).sum(1) + net.W.pow(2).sum(0)
    if reg == "l23":
        r = norms.pow(1.5).sum()
    elif reg == "l2":
        r = 0.5 * norms.sum()
    else:
        raise ConfigError(f"invalid reg = {reg}: expected l23 or l2", "reg", reg, "expected l23 or l2")
    return ce, reg_strength * r
