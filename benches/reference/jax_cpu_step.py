"""One full-batch training step of clockwork's model in JAX on the CPU (jax.jit).

The same step as torch_cpu_step.py, written the way one writes it in JAX: a loss for one
model, jax.value_and_grad, jax.vmap over the B independent models, the SGD update inside
the same jax.jit, and block_until_ready() before reading the clock (JAX dispatches
asynchronously, so a step without it would time only the dispatch). The model
(shared/theory.md §1):

    h_i(a,b) = (U[i,a] + V[i,b])²          U, V: m×p,  W: p×m (n_out = p)
    logits(a,b) = W · h(a,b)
    loss = mean over all p² pairs of softmax-CE(logits, (a+b) mod p)
           + λ Σ_i (‖u_i‖² + ‖v_i‖² + ‖w_i‖²)^{3/2},   λ = 1e-4
    θ ← θ − lr·∇loss  (full batch)

Effective FLOPs per step: 6·p²·m·n_out·B. JAX uses all the cores it can see.

Usage:
    python jax_cpu_step.py            # timing table
    python jax_cpu_step.py --check    # loss / gradient norms for the cross-check

--check uses p=23, m=96, B=1, float64, lr=0.05 and this deterministic init (i = neuron
0..m-1, a, b, c = token or class 0..p-1; torch_cpu_step.py uses the same formula):

    U[i,a] = 0.3·sin(0.1·(i+1)·(a+1))
    V[i,b] = 0.3·cos(0.07·(i+1)·(b+1))
    W[c,i] = 0.3·sin(0.05·(i+1)·(c+1) + 1)

It prints, at that init: the cross-entropy, the regularizer, their sum, the Frobenius
norms of the gradients of the total loss (and of the cross-entropy alone) w.r.t. U, V, W,
a few gradient entries, and the total loss after one SGD step.
"""

import argparse
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

# float64 needs x64 mode; float32 runs stay float32 because every array is created with
# an explicit dtype and Python scalars are weakly typed.
jax.config.update("jax_enable_x64", True)

LAMBDA = 1e-4  # L_{2,3} strength, as in the blog recipe
SHAPES = [(71, 500, 1), (113, 512, 1), (23, 96, 64)]  # the engine's step_timing shapes
DTYPES = {"f32": jnp.float32, "f64": jnp.float64}


def pairs(p):
    """All p² inputs (a, b) in row-major order and their labels (a+b) mod p."""
    a = jnp.repeat(jnp.arange(p), p)
    b = jnp.tile(jnp.arange(p), p)
    return a, b, (a + b) % p


def losses(params, a, b, y):
    """(cross-entropy, regularizer) of one model; U, V: (m, p), W: (p, m)."""
    U, V, W = params
    s = U.T[a] + V.T[b]  # embedding lookup, (p², m)
    h = s * s  # the hidden matrix, materialized
    logits = h @ W.T  # (p², n_out)
    picked = jnp.take_along_axis(logits, y[:, None], axis=1)[:, 0]
    ce = jnp.mean(jax.nn.logsumexp(logits, axis=1) - picked)
    norms = (U**2).sum(1) + (V**2).sum(1) + (W**2).sum(0)  # per neuron
    reg = LAMBDA * jnp.sum(norms**1.5)
    return ce, reg


def total_loss(params, a, b, y):
    ce, reg = losses(params, a, b, y)
    return ce + reg


def make_step(lr):
    # vmap over the leading (model) axis of every parameter; the data is shared.
    batched = jax.vmap(jax.value_and_grad(total_loss), in_axes=(0, None, None, None))

    def step(params, a, b, y):
        loss, grads = batched(params, a, b, y)
        return jax.tree.map(lambda x, g: x - lr * g, params, grads), loss

    # Donating the old parameters lets XLA update them in place, as the engine does.
    return jax.jit(step, donate_argnums=0)


def random_params(p, m, B, dtype, seed=0):
    # Same distribution as the engine's default init (Gaussian, std 0.5).
    ku, kv, kw = jax.random.split(jax.random.PRNGKey(seed), 3)
    return (
        0.5 * jax.random.normal(ku, (B, m, p), dtype),
        0.5 * jax.random.normal(kv, (B, m, p), dtype),
        0.5 * jax.random.normal(kw, (B, p, m), dtype),
    )


def time_step(step, params, data, seconds, warmup):
    """Median and best of single-step wall times (s), after warm-up (and compile) steps."""

    def one(params):
        return jax.block_until_ready(step(params, *data))[0]

    for _ in range(warmup):
        params = one(params)
    t0 = time.perf_counter()
    params = one(params)
    first = time.perf_counter() - t0
    n = max(5, min(2000, int(seconds / max(first, 1e-6))))
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        params = one(params)
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
    print(f"# jax {jax.__version__}, devices {jax.devices()}", flush=True)
    print("   p     m    B type  impl", flush=True)
    for p, m, B in SHAPES:
        data = pairs(p)
        for tname in args.dtypes:
            try:
                # The engine's step_timing uses lr 1e-4 with no schedule: same here.
                params = random_params(p, m, B, DTYPES[tname])
                med, best, n = time_step(make_step(1e-4), params, data, args.seconds, 3)
            except Exception as e:
                msg = " ".join(f"{type(e).__name__}: {e}".split())[:300]
                print(f"{p:>4} {m:>5} {B:>4} {tname:>4}  {'jax-jit':<13}  FAILED {msg}", flush=True)
                continue
            report(p, m, B, tname, "jax-jit", med, best, n)


def check_params(p, m, dtype):
    """The deterministic init of the docstring (one model)."""
    i = jnp.arange(1, m + 1, dtype=dtype)[:, None]  # neuron index + 1, as a column
    t = jnp.arange(1, p + 1, dtype=dtype)[None, :]  # token/class index + 1, as a row
    U = 0.3 * jnp.sin(0.1 * i * t)  # U[i,a] = 0.3 sin(0.1 (i+1)(a+1))
    V = 0.3 * jnp.cos(0.07 * i * t)  # V[i,b] = 0.3 cos(0.07 (i+1)(b+1))
    W = (0.3 * jnp.sin(0.05 * i * t + 1)).T  # W[c,i] = 0.3 sin(0.05 (i+1)(c+1) + 1)
    return (U, V, W)


def check():
    p, m, lr = 23, 96, 0.05
    a, b, y = pairs(p)
    params = check_params(p, m, jnp.float64)
    (ce, reg) = losses(params, a, b, y)
    ce_grads = jax.grad(lambda q: losses(q, a, b, y)[0])(params)
    grads = jax.grad(total_loss)(params, a, b, y)
    after = total_loss(tuple(x - lr * g for x, g in zip(params, grads)), a, b, y)
    print(f"# jax {jax.__version__} check: p={p} m={m} B=1 f64 lr={lr} lambda={LAMBDA}")
    print(f"loss_ce          {float(ce):.15e}")
    print(f"loss_reg         {float(reg):.15e}")
    print(f"loss_total       {float(ce + reg):.15e}")
    for name, g, gce in zip("UVW", grads, ce_grads):
        print(f"|d{name}| total    {float(jnp.linalg.norm(g)):.15e}   "
              f"ce only {float(jnp.linalg.norm(gce)):.15e}")
    dU, dV, dW = (np.asarray(g) for g in grads)
    print(f"dU[0,0] {dU[0, 0]:.15e}  dV[0,0] {dV[0, 0]:.15e}  "
          f"dW[0,0] {dW[0, 0]:.15e}  (total loss)")
    print(f"dU[5,7] {dU[5, 7]:.15e}  dV[5,7] {dV[5, 7]:.15e}  "
          f"dW[7,5] {dW[7, 5]:.15e}  (U, V: [neuron, token]; W: [class, neuron])")
    print(f"loss_total after one step  {float(after):.15e}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true", help="print the cross-check values")
    ap.add_argument("--seconds", type=float, default=5.0, help="timed seconds per shape")
    ap.add_argument("--dtypes", nargs="+", default=["f32", "f64"], choices=list(DTYPES))
    args = ap.parse_args()
    if args.check:
        check()
    else:
        bench(args)


if __name__ == "__main__":
    main()
