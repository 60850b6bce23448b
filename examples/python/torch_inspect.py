"""Train in clockwork, inspect with your own PyTorch code (notebook style).

clockwork trains a+b mod 23 (x², width 176) in a few seconds; the trained network then
becomes a plain ``torch.nn.Module`` (``clockwork.torch``) for the kind of code people
already write: forward hooks, ablations, a few fine-tuning steps with torch.optim. The
edited module goes back to clockwork for its margin and Fourier analysis.

    python examples/python/torch_inspect.py          # STEPS=... to change the run length

Needs torch (pip install torch).
"""

# %% Train with clockwork
import os

import numpy as np
import torch

import clockwork as cw
import clockwork.torch as ct

cfg = cw.Config.preset("default").with_(p=23, width=176, dtype="f64", steps=int(os.environ.get("STEPS", 3000)))
trainer = cw.Trainer(cfg)
trainer.step(cfg.steps)
ev = trainer.evaluate()
print(f"clockwork: step {ev['step']}, acc {ev['train_acc'][0]:.4f}, γ/γ* {ev['gamma_ratio'][0]:.3f}")

# %% The same network as a torch.nn.Module
net = ct.from_trainer(trainer)  # parameters U (m×p), V (m×p), W (p×m), float64
a, b, y = ct.all_pairs(cfg.p)
with torch.no_grad():
    logits = net(a, b)
print("PyTorch accuracy:", (logits.argmax(-1) == y).double().mean().item())

# %% Your own code: a forward hook on the hidden layer, and ablations by frequency
hidden = {}
handle = net.register_forward_hook(lambda mod, inp, out: hidden.update(h=mod.hidden(*inp)))
with torch.no_grad():
    net(a, b)
handle.remove()
print("hidden activations:", tuple(hidden["h"].shape))

freq, _ = cw.dominant_frequencies(*trainer.weights())
for k in np.unique(freq)[:5]:
    ablated = ct.from_trainer(trainer)
    with torch.no_grad():
        ablated.W[:, torch.from_numpy(freq == k)] = 0  # remove every neuron of frequency k
        acc = (ablated(a, b).argmax(-1) == y).double().mean().item()
    print(f"without the {int((freq == k).sum()):2d} neurons of frequency {k:2d}: accuracy {acc:.4f}")

# %% A few steps of fine-tuning in PyTorch, then clockwork's analysis of the result
opt = torch.optim.SGD(net.parameters(), lr=0.05)
for _ in range(20):
    opt.zero_grad()
    ce, reg = ct.objective(net, reg_strength=1e-4)
    (ce + reg).backward()
    opt.step()
U, V, W = (x.detach().numpy() for x in (net.U, net.V, net.W))
m = cw.margin(U, V, W)
print(f"after fine-tuning in PyTorch: acc {m['accuracy']:.4f}, γ/γ* {m['ratio']:.3f}")
ct.to_trainer(net, trainer)  # and back into the clockwork trainer, which continues from it
print("clockwork continues:", trainer.step(10)["train_loss"][0])
