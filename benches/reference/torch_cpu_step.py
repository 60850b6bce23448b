"""One full-batch training step of clockwork's model, written plainly in PyTorch (CPU).

This is the baseline a researcher would write, kept deliberately idiomatic (index lookup
for the embeddings, a materialized hidden matrix, F.cross_entropy, loss.backward(),
torch.optim.SGD) so that the comparison with the Rust engine is fair to PyTorch's
ordinary use rather than to a hand-tuned kernel. The model (shared/theory.md §1):

    h_i(a,b) = (U[i,a] + V[i,b])²          U, V: m×p,  W: p×m (n_out = p)
    logits(a,b) = W · h(a,b)
    loss = mean over all p² pairs of softmax-CE(logits, (a+b) mod p)
           + λ Σ_i (‖u_i‖² + ‖v_i‖² + ‖w_i‖²)^{3/2},   λ = 1e-4
    θ ← θ − lr·∇loss  (full batch)

B independent models are batched as parameters of shape (B, m, p) / (B, p, m) with
torch.bmm; the loss is the sum over models of each model's loss, so every model gets its
own gradient. Effective FLOPs per step: 6·p²·m·n_out·B.

Usage:
    python torch_cpu_step.py                  # timing table, eager
    python torch_cpu_step.py --compile        # also torch.compile (reported, never fatal)
    python torch_cpu_step.py --check          # loss / gradient norms for the cross-check

--check uses p=23, m=96, B=1, float64, lr=0.05 and this deterministic init (i = neuron
0..m-1, a, b, c = token or class 0..p-1; jax_cpu_step.py uses the same formula):

    U[i,a] = 0.3·sin(0.1·(i+1)·(a+1))
    V[i,b] = 0.3·cos(0.07·(i+1)·(b+1))
    W[c,i] = 0.3·sin(0.05·(i+1)·(c+1) + 1)

It prints, at that init: the cross-entropy, the regularizer, their sum, the Frobenius
norms of the gradients of the total loss (and of the cross-entropy alone) w.r.t. U, V, W,
a few gradient entries, and the total loss after one SGD step.
"""

import argparse
import os
import statistics
import time

import torch
import torch.nn.functional as F

LAMBDA = 1e-4  # L_{2,3} strength, as in the blog recipe
SHAPES = [(71, 500, 1), (113, 512, 1), (23, 96, 64)]  # the engine's step_timing shapes
DTYPES = {"f32": torch.float32, "f64": torch.float64}


def pairs(p):
    """All p² inputs (a, b) in row-major order and their labels (a+b) mod p."""
    a = torch.arange(p).repeat_interleave(p)
    b = torch.arange(p).repeat(p)
    return a, b, (a + b) % p


def losses(U, V, W, a, b, y):
    """Returns (cross-entropy summed over models, regularizer summed over models)."""
    B, m, p = U.shape
    n = a.numel()
    # Embedding lookup: row a of Uᵀ is (u_1[a], ..., u_m[a]); gives (B, p², m).
    s = U.transpose(1, 2)[:, a, :] + V.transpose(1, 2)[:, b, :]
    h = s * s  # the hidden matrix, materialized, as a researcher would
    logits = torch.bmm(h, W.transpose(1, 2))  # (B, p², n_out)
    # Sum over models of each model's mean CE, so gradients stay per model.
    ce = F.cross_entropy(logits.reshape(B * n, -1), y.repeat(B), reduction="sum") / n
    norms = U.pow(2).sum(2) + V.pow(2).sum(2) + W.pow(2).sum(1)  # (B, m): per neuron
    reg = LAMBDA * norms.pow(1.5).sum()
    return ce, reg


def total_loss(U, V, W, a, b, y):
    ce, reg = losses(U, V, W, a, b, y)
    return ce + reg


def random_params(p, m, B, dtype, seed=0):
    # Same distribution as the engine's default init (Gaussian, std 0.5); the values do
    # not matter for timing as long as nothing overflows.
    g = torch.Generator().manual_seed(seed)
    shapes = [(B, m, p), (B, m, p), (B, p, m)]
    return [(0.5 * torch.randn(s, generator=g, dtype=dtype)).requires_grad_() for s in shapes]


def make_step(params, a, b, y, lr, compiled):
    if compiled:
        # A fresh, static-shape compile per shape and dtype: without the reset, dynamo
        # would recompile the same function with symbolic shapes after the first shape
        # change, which times something other than the plain compiled step.
        torch._dynamo.reset()
        loss_fn = torch.compile(total_loss, dynamic=False)
    else:
        loss_fn = total_loss
    opt = torch.optim.SGD(params, lr=lr)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(*params, a, b, y)
        loss.backward()
        opt.step()
        return loss

    return step


def time_step(step, seconds, warmup):
    """Median and best of single-step wall times (s), after warm-up steps.

    Per-step times and the median make the figure robust to the odd preempted step on a
    shared machine; the count is chosen from a first measurement so a shape takes about
    `seconds`.
    """
    for _ in range(warmup):
        step()
    t0 = time.perf_counter()
    step()
    first = time.perf_counter() - t0
    n = max(5, min(2000, int(seconds / max(first, 1e-6))))
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        step()  # CPU autograd is synchronous: the update has finished when this returns
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times), n


def report(p, m, B, tname, impl, med, best, n):
    flops = 6 * p * p * m * p * B
    print(
        f"{p:>4} {m:>5} {B:>4} {tname:>4}  {impl:<13}  median {med * 1e3:>9.3f} ms  "
        f"best {best * 1e3:>9.3f} ms  {flops / med / 1e9:>7.1f} GFLOP/s (median)  "
        f"{flops / best / 1e9:>7.1f} (best)  n={n}",
        flush=True,
    )


def bench(args):
    impls = ["torch-eager"] + (["torch-compile"] if args.compile else [])
    print(f"# torch {torch.__version__}, {torch.get_num_threads()} threads", flush=True)
    print("   p     m    B type  impl", flush=True)
    for p, m, B in SHAPES:
        a, b, y = pairs(p)
        for tname in args.dtypes:
            for impl in impls:
                params = random_params(p, m, B, DTYPES[tname])
                try:
                    # The engine's step_timing uses lr 1e-4 with no schedule: same here.
                    step = make_step(params, a, b, y, 1e-4, impl == "torch-compile")
                    # Compilation happens in the first calls: more warm-up when compiled.
                    warmup = 5 if impl == "torch-compile" else 3
                    med, best, n = time_step(step, args.seconds, warmup)
                except Exception as e:  # torch.compile may lack a C++ toolchain, etc.
                    msg = " ".join(f"{type(e).__name__}: {e}".split())[:300]
                    print(f"{p:>4} {m:>5} {B:>4} {tname:>4}  {impl:<13}  FAILED {msg}", flush=True)
                    continue
                report(p, m, B, tname, impl, med, best, n)


def check_params(p, m, dtype):
    """The deterministic init of the docstring (one model, B = 1)."""
    i = torch.arange(1, m + 1, dtype=dtype)[:, None]  # neuron index + 1, as a column
    t = torch.arange(1, p + 1, dtype=dtype)[None, :]  # token/class index + 1, as a row
    U = 0.3 * torch.sin(0.1 * i * t)  # U[i,a] = 0.3 sin(0.1 (i+1)(a+1))
    V = 0.3 * torch.cos(0.07 * i * t)  # V[i,b] = 0.3 cos(0.07 (i+1)(b+1))
    W = (0.3 * torch.sin(0.05 * i * t + 1)).T  # W[c,i] = 0.3 sin(0.05 (i+1)(c+1) + 1)
    return [x[None].clone().requires_grad_() for x in (U, V, W)]


def check():
    p, m, lr = 23, 96, 0.05
    a, b, y = pairs(p)
    params = check_params(p, m, torch.float64)
    ce, reg = losses(*params, a, b, y)
    ce_grads = torch.autograd.grad(ce, params, retain_graph=True)
    grads = torch.autograd.grad(ce + reg, params)
    with torch.no_grad():
        after = total_loss(*[x - lr * g for x, g in zip(params, grads)], a, b, y)
    print(f"# torch {torch.__version__} check: p={p} m={m} B=1 f64 lr={lr} lambda={LAMBDA}")
    print(f"loss_ce          {ce.item():.15e}")
    print(f"loss_reg         {reg.item():.15e}")
    print(f"loss_total       {(ce + reg).item():.15e}")
    for name, g, gce in zip("UVW", grads, ce_grads):
        print(f"|d{name}| total    {g.norm().item():.15e}   ce only {gce.norm().item():.15e}")
    dU, dV, dW = (g[0] for g in grads)
    print(f"dU[0,0] {dU[0, 0].item():.15e}  dV[0,0] {dV[0, 0].item():.15e}  "
          f"dW[0,0] {dW[0, 0].item():.15e}  (total loss)")
    print(f"dU[5,7] {dU[5, 7].item():.15e}  dV[5,7] {dV[5, 7].item():.15e}  "
          f"dW[7,5] {dW[7, 5].item():.15e}  (U, V: [neuron, token]; W: [class, neuron])")
    print(f"loss_total after one step  {after.item():.15e}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--compile", action="store_true", help="also time torch.compile")
    ap.add_argument("--check", action="store_true", help="print the cross-check values")
    ap.add_argument("--seconds", type=float, default=5.0, help="timed seconds per shape")
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--dtypes", nargs="+", default=["f32", "f64"], choices=list(DTYPES))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.check:
        check()
    else:
        bench(args)


if __name__ == "__main__":
    main()
