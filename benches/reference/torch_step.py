#!/usr/bin/env python3
"""GPU PyTorch reference for the CUDA engine's training step (benches/cuda_step.rs).

The same full-batch step as clockwork's default recipe, for a batch of B models:
    h = (U[a] + V[b])**2                      (B, p², m)   every pair of Z_p
    f = h @ Wᵀ                                (B, p², p)
    L = Σ_models mean_pairs CE(f, (a+b) mod p) + λ Σ_i (‖u_i‖²+‖v_i‖²+‖w_i‖²)^{3/2}
    θ ← θ − lr·∇L                             (full-batch GD)
in eager mode and under torch.compile, fp32 (TF32 off) and TF32. Prints µs/step and
effective TFLOP/s = 6·p²·m·n_out·B / time, one line per configuration; shapes that do not
fit in GPU memory print "out of memory".

Usage: python3 benches/reference/torch_step.py [--steps N] [--shapes 113x512x1,23x96x1024]
"""

import argparse
import sys
import time

import torch
import torch.nn.functional as F

DEFAULT_SHAPES = "113x512x1,23x96x1024,1009x4032x1"


def make(p, m, batch, device):
    g = torch.Generator(device="cpu").manual_seed(0)
    u = (0.5 * torch.randn(batch, p, m, generator=g)).to(device).requires_grad_()
    v = (0.5 * torch.randn(batch, p, m, generator=g)).to(device).requires_grad_()
    w = (0.5 * torch.randn(batch, p, m, generator=g)).to(device).requires_grad_()
    a = torch.arange(p, device=device).repeat_interleave(p)
    b = torch.arange(p, device=device).repeat(p)
    y = (a + b) % p
    return [u, v, w], a, b, y


def loss_fn(u, v, w, a, b, y, lam):
    batch, n_pairs = u.shape[0], a.shape[0]
    h = (u[:, a, :] + v[:, b, :]) ** 2
    f = torch.bmm(h, w.transpose(1, 2))
    data = F.cross_entropy(f.reshape(-1, f.shape[-1]), y.repeat(batch), reduction="sum") / n_pairs
    norms = (u * u).sum(1) + (v * v).sum(1) + (w * w).sum(1)
    return data + lam * (norms * norms.sqrt()).sum()


def bench(p, m, batch, mode, tf32, steps, device):
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    params, a, b, y = make(p, m, batch, device)
    lam, lr = 1e-4, 1e-4
    fn = torch.compile(loss_fn) if mode == "compile" else loss_fn

    def step():
        loss = fn(*params, a, b, y, lam)
        loss.backward()
        with torch.no_grad():
            grads = [t.grad for t in params]
            torch._foreach_add_(params, grads, alpha=-lr)
        for t in params:
            t.grad = None
        return loss

    for _ in range(3):  # warm-up (and compilation)
        step()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    t0 = time.perf_counter()
    start.record()
    for _ in range(steps):
        step()
    end.record()
    torch.cuda.synchronize()
    wall = time.perf_counter() - t0
    ms = start.elapsed_time(end) / steps
    peak = torch.cuda.max_memory_allocated() / 2**20
    return ms * 1e3, wall, peak


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=0, help="timed steps (default: by shape)")
    ap.add_argument("--shapes", default=DEFAULT_SHAPES, help="PxMxB,... (n_out = p)")
    ap.add_argument("--modes", default="eager,compile")
    ap.add_argument("--precisions", default="fp32,tf32")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA device: skipped")
        return 0
    device = "cuda"
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name(0)}")
    print(f"{'config':<40} {'µs/step':>12} {'TFLOP/s':>9} {'peak MiB':>9}")
    for shape in args.shapes.split(","):
        p, m, batch = (int(x) for x in shape.split("x"))
        flops = 6.0 * p * p * m * p * batch
        steps = args.steps or max(3, min(200, int(2e13 / flops)))
        for mode in args.modes.split(","):
            for prec in args.precisions.split(","):
                label = f"torch {mode} {prec} p={p} m={m} B={batch}"
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats()
                try:
                    us, _, peak = bench(p, m, batch, mode, prec == "tf32", steps, device)
                    print(f"{label:<40} {us:>12.1f} {flops / us / 1e6:>9.2f} {peak:>9.0f}", flush=True)
                except torch.cuda.OutOfMemoryError:
                    print(f"{label:<40} out of memory", flush=True)
                except Exception as e:  # noqa: BLE001 - report and go on to the next shape
                    print(f"{label:<40} failed: {type(e).__name__}: {e}".splitlines()[0], flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
