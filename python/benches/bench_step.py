"""Python overhead of clockwork's step, and a plain PyTorch step, side by side.

At p = 23, m = 96 (one model, f32 and f64) it times, interleaved round by round:
  - step(n): n steps in one call; its time per step is the step itself (the call's
    Python cost is spread over n steps);
  - a loop of n step(1) calls: the step plus one call's Python overhead each
    (argument parsing, releasing and retaking the GIL, the report dict);
  - a plain PyTorch step of the same model (clockwork.torch.objective + torch.optim.SGD,
    eager), when torch is installed.
step(n) and the loop alternate round by round; PyTorch is timed after them. The
loop-minus-step(n) difference is within the noise of a shared machine at this size,
so the call overhead is also measured on its own: the same two ways of stepping a
3 × 1 model, whose step is short (tens of µs), differ by the Python cost of one call.
Each figure is the median over rounds of the mean per step within a round. A benchmark,
not a test: the machine is shared and noisy, so compare figures from one run only.

With --threads T clockwork runs on a thread pool of its own, and a call hands its steps
to that pool once (a sleep and a wake-up, ~100 µs on a shared 2-vCPU VM): step(n) pays
it once per n steps, a step(1) loop every step. Without (the default) one model of one
chunk steps on the calling thread. The 3 × 1 model uses the default, so its line is
Python's own cost.

    python python/benches/bench_step.py [--rounds 15] [--n 200] [--threads T]
"""

import argparse
import os
import statistics
import time

import clockwork as cw

P, M = 23, 96


def per_step(fn, n):
    t0 = time.perf_counter()
    fn(n)
    return (time.perf_counter() - t0) / n


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--n", type=int, default=200, help="steps per timed block")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (0 = all cores)")
    args = ap.parse_args()
    try:
        import torch

        import clockwork.torch as ct

        torch.set_num_threads(args.threads or len(os.sched_getaffinity(0)))
    except ImportError:
        torch = None
    print(f"# p={P} m={M} B=1, {args.rounds} rounds of {args.n} steps, clockwork {cw.__version__}"
          + (f", torch {torch.__version__} ({torch.get_num_threads()} threads)" if torch else ", no torch"))
    tiny = cw.Trainer(cw.Config(p=3, width=1, dtype="f64", lr=1e-4, lr_milestones=[]))

    def tiny_loop(n):
        for _ in range(n):
            tiny.step(1)

    calls, tiny_steps = [], []
    for _ in range(args.rounds):
        tiny_steps.append(per_step(tiny.step, 20 * args.n))
        calls.append(per_step(tiny_loop, 20 * args.n))
    call = statistics.median(calls) - statistics.median(tiny_steps)
    print(f"# Python cost of one step(1) call: {call * 1e6:.2f} µs "
          f"(3 × 1 model: step(1) loop {statistics.median(calls) * 1e6:.2f} µs/call, "
          f"step(n) {statistics.median(tiny_steps) * 1e6:.2f} µs/step)")
    print(f"{'dtype':<6}{'step(n) /step':>15}{'step(1) loop':>15}{'loop-step(n)':>14}{'call/step':>11}{'PyTorch eager':>15}")
    for dtype in ("f32", "f64"):
        # lr 1e-4 without milestones: the weights stay finite for any number of steps.
        cfg = cw.Config(p=P, width=M, dtype=dtype, lr=1e-4, lr_milestones=[], threads=args.threads)
        t = cw.Trainer(cfg)
        t.step(args.n)  # warm-up

        def loop(n):
            for _ in range(n):
                t.step(1)

        torch_step = None
        if torch is not None:
            net = ct.from_trainer(t, dtype=torch.float32 if dtype == "f32" else torch.float64)
            opt = torch.optim.SGD(net.parameters(), lr=1e-4)

            def torch_step(n):
                for _ in range(n):
                    opt.zero_grad(set_to_none=True)
                    ce, r = ct.objective(net, reg_strength=1e-4)
                    (ce + r).backward()
                    opt.step()

            torch_step(5)
        batched, looped, torched = [], [], []
        # The two ways of stepping alternate in order (ABBA) so drift favours neither;
        # PyTorch runs after them, as its OpenMP threads keep spinning for a while after
        # each step and would slow whatever ran next.
        for r in range(args.rounds):
            pair = [(batched, t.step), (looped, loop)]
            for out, fn in pair if r % 2 == 0 else pair[::-1]:
                out.append(per_step(fn, args.n))
        if torch_step:
            for _ in range(args.rounds):
                torched.append(per_step(torch_step, max(10, args.n // 10)))
        b, l = statistics.median(batched), statistics.median(looped)
        pt = f"{statistics.median(torched) * 1e6:>12.1f} µs" if torched else f"{'-':>15}"
        print(f"{dtype:<6}{b * 1e6:>12.1f} µs{l * 1e6:>12.1f} µs{(l - b) / b * 100:>13.1f}%"
              f"{call / b * 100:>10.2f}%{pt}")


if __name__ == "__main__":
    main()
