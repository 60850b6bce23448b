"""Reference values for tests/torch_parity_cases.rs: one training step of clockwork's
model in several settings, computed independently with PyTorch autograd in float64.

The existing torch_cpu_step.py --check pins one setting (x², cross-entropy, L_{2,3}, GD,
untied, unfactored). This script covers the rest of what the engine trains: ReLU, x^3,
tied and factored embeddings, MSE, the L2 penalty and AdamW. Each case is written from
the model's definition (shared/theory.md §1, README "Model"), not from the engine:

    storage (token-major, as clockwork's parameter vector): U, V: p×m, W: n_out×m
    factored (embed_dim d): E: p×d, P_u, P_v, P_out: d×m, U = E·P_u, V = E·P_v, W = E·P_out
    tied: V = U (and P_v = P_u); no separate tensor
    h(a,b) = σ(U[a] + V[b]),  logits(a,b) = W · h(a,b)   (row per pair)
    loss: mean softmax-CE over all p² pairs, or MSE = mean over pairs and classes of
          (f_c − 1[c = y])²
    penalties on the effective U, V, W, per neuron n_i = ‖u_i‖² + ‖v_i‖² + ‖w_i‖²
          (a tied model counts ‖u_i‖² twice): l2 = (λ/2) Σ n_i, l23 = λ Σ n_i^{3/2}
    optimizers: torch.optim.SGD, torch.optim.AdamW (decoupled decay on the trained
          tensors, i.e. the factors when factored)

Deterministic init: tensor number t (in storage order) at flat row-major index j holds
    0.4·sin(0.37·j + 1.3·t + 0.2)

Output: JSON (benches/reference/torch_parity_cases.json), per case its settings and, at
the init, the data loss, the penalty, each tensor's gradient norm and three entries
(flat indices 0, 7 and the last) of the gradient of the objective; then, after `steps`
optimizer steps, the data loss and penalty and each tensor's norm and entries 0, 7, last.

Usage (any recent torch; the committed values came from the version recorded in the file):
    python benches/reference/torch_parity_cases.py > benches/reference/torch_parity_cases.json
"""

import json
import math

import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)

CASES = [
    # name, p, m, d (0 = unfactored), tied, activation, loss, regularizer, λ,
    # optimizer, lr, weight_decay, steps
    dict(name="relu_ce_l2_gd", p=11, m=16, d=0, tied=False, activation="relu",
         loss="cross_entropy", regularizer="l2", reg_strength=1e-3,
         optimizer="gd", lr=0.1, weight_decay=0.0, steps=1),
    dict(name="square_mse_gd", p=11, m=16, d=0, tied=False, activation="square",
         loss="mse", regularizer="none", reg_strength=0.0,
         optimizer="gd", lr=0.5, weight_decay=0.0, steps=1),
    dict(name="relu_tied_ce_adamw", p=11, m=16, d=0, tied=True, activation="relu",
         loss="cross_entropy", regularizer="none", reg_strength=0.0,
         optimizer="adamw", lr=1e-2, weight_decay=0.5, steps=3),
    dict(name="relu_factored_tied_ce_adamw", p=11, m=8, d=6, tied=True, activation="relu",
         loss="cross_entropy", regularizer="none", reg_strength=0.0,
         optimizer="adamw", lr=1e-2, weight_decay=1.0, steps=3),
    dict(name="square_factored_ce_l23_gd", p=11, m=8, d=6, tied=False, activation="square",
         loss="cross_entropy", regularizer="l23", reg_strength=1e-3,
         optimizer="gd", lr=0.05, weight_decay=0.0, steps=1),
    dict(name="pow3_tied_mse_adamw", p=7, m=12, d=0, tied=True, activation="pow3",
         loss="mse", regularizer="l2", reg_strength=1e-2,
         optimizer="adamw", lr=1e-2, weight_decay=0.0, steps=2),
]
BETAS = (0.9, 0.98)
EPS = 1e-8


def tensor_shapes(c):
    p, m, d = c["p"], c["m"], c["d"]
    if d == 0:
        names = ["u"] + ([] if c["tied"] else ["v"]) + ["w"]
        return [(n, (p, m)) for n in names]
    names = ["proj_u"] + ([] if c["tied"] else ["proj_v"]) + ["proj_out"]
    return [("embed", (p, d))] + [(n, (d, m)) for n in names]


def init(c):
    out = []
    for t, (_, shape) in enumerate(tensor_shapes(c)):
        j = torch.arange(shape[0] * shape[1], dtype=torch.float64)
        out.append((0.4 * torch.sin(0.37 * j + 1.3 * t + 0.2)).reshape(shape).requires_grad_())
    return out


def effective(c, params):
    named = dict(zip([n for n, _ in tensor_shapes(c)], params))
    if c["d"] == 0:
        u = named["u"]
        v = u if c["tied"] else named["v"]
        return u, v, named["w"]
    e = named["embed"]
    u = e @ named["proj_u"]
    v = u if c["tied"] else e @ named["proj_v"]
    return u, v, e @ named["proj_out"]


def sigma(c, s):
    act = c["activation"]
    if act == "relu":
        return torch.relu(s)
    if act == "square":
        return s * s
    return s ** int(act[3:])


def objective(c, params):
    p = c["p"]
    a = torch.arange(p).repeat_interleave(p)
    b = torch.arange(p).repeat(p)
    y = (a + b) % p
    u, v, w = effective(c, params)
    logits = sigma(c, u[a] + v[b]) @ w.T
    if c["loss"] == "cross_entropy":
        data = F.cross_entropy(logits, y)
    else:
        data = ((logits - F.one_hot(y, p).to(logits.dtype)) ** 2).mean()
    norms = (u * u).sum(0) + (v * v).sum(0) + (w * w).sum(0)  # per neuron (column)
    lam = c["reg_strength"]
    if c["regularizer"] == "l2":
        reg = 0.5 * lam * norms.sum()
    elif c["regularizer"] == "l23":
        reg = lam * norms.pow(1.5).sum()
    else:
        reg = torch.zeros(())
    return data, reg


def entries(x):
    flat = x.detach().reshape(-1)
    return [flat[0].item(), flat[7].item(), flat[-1].item()]


def run(c):
    params = init(c)
    data, reg = objective(c, params)
    (data + reg).backward()
    names = [n for n, _ in tensor_shapes(c)]
    grads = {
        n: {"norm": t.grad.norm().item(), "entries": entries(t.grad)}
        for n, t in zip(names, params)
    }
    for t in params:
        t.grad = None
    if c["optimizer"] == "gd":
        opt = torch.optim.SGD(params, lr=c["lr"])
    else:
        opt = torch.optim.AdamW(params, lr=c["lr"], betas=BETAS, eps=EPS,
                                weight_decay=c["weight_decay"])
    for _ in range(c["steps"]):
        opt.zero_grad()
        d, r = objective(c, params)
        (d + r).backward()
        opt.step()
    with torch.no_grad():
        data_after, reg_after = objective(c, params)
    after = {n: {"norm": t.detach().norm().item(), "entries": entries(t)}
             for n, t in zip(names, params)}
    return {
        **c,
        "beta1": BETAS[0], "beta2": BETAS[1], "eps": EPS,
        "data_loss": data.item(), "reg_loss": reg.item(), "grads": grads,
        "data_loss_after": data_after.item(), "reg_loss_after": reg_after.item(),
        "params_after": after,
    }


def main():
    out = {
        "generator": "benches/reference/torch_parity_cases.py",
        "torch": torch.__version__,
        "init": "tensor t, flat index j: 0.4*sin(0.37*j + 1.3*t + 0.2)",
        "cases": [run(c) for c in CASES],
    }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
