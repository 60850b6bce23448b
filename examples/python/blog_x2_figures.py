"""The README's blog-x2 figures from Python, notebook style (run it cell by cell in
Jupyter / VS Code, or as a script).

Trains the blog recipe (a+b mod 71, x², width 500, GD 0.05 doubled at 1k..10k,
L_{2,3} 1e-4; 40k steps, ~5.5 min on 2 cores) and draws, from the trainer's own
evaluations and weights: the normalized margin γ/γ* over training, neurons and weight
per frequency, the final spectra of 64 neurons and the phase residuals θu + θv − θw.

    python examples/python/blog_x2_figures.py [OUT_DIR]      # default runs/blog-x2-py
    STEPS=4000 python examples/python/blog_x2_figures.py      # a shorter run

Needs matplotlib (pip install matplotlib).
"""

# %% Train, evaluating every 500 steps
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import clockwork as cw

out = sys.argv[1] if len(sys.argv) > 1 else "runs/blog-x2-py"
os.makedirs(out, exist_ok=True)
cfg = cw.Config.preset("blog-x2").with_(steps=int(os.environ.get("STEPS", 40_000)))
trainer = cw.Trainer(cfg)
evals = [trainer.evaluate()]
while trainer.steps_done < cfg.steps:
    trainer.step(min(500, cfg.steps - trainer.steps_done))
    evals.append(trainer.evaluate())
last = evals[-1]
print(f"step {last['step']}: train acc {last['train_acc'][0]:.4f}, γ/γ* = {last['gamma_ratio'][0]:.4f}")

# %% Normalized margin over training, reaching γ*
steps = [e["step"] for e in evals]
plt.figure(figsize=(6, 3.5))
plt.plot(steps, [e["gamma_ratio"][0] for e in evals])
plt.axhline(1.0, color="gray", ls="--", lw=1)
plt.xlabel("step"), plt.ylabel("γ / γ*"), plt.ylim(-0.1, 1.1), plt.title("normalized margin")
plt.tight_layout(), plt.savefig(f"{out}/margin.png", dpi=120)

# %% Neurons and weight per frequency
U, V, W = trainer.weights()
summary = cw.frequency_summary(U, V, W)
k = np.arange(1, summary["max_freq"] + 1)
fig, ax = plt.subplots(figsize=(7, 3.5))
ax.bar(k, summary["neurons_per_freq"][1:], color="tab:blue", label="neurons")
ax2 = ax.twinx()
share = np.array(summary["norm_share_per_freq"][1:]) * summary["max_freq"]
ax2.plot(k, share, "o", color="tab:orange", label="weight / equal share")
ax2.set_ylim(0, 2)
ax.set_xlabel("frequency k"), ax.set_ylabel("neurons"), ax2.set_ylabel("weight ÷ equal share")
plt.title(f"{len(summary['freqs_used'])} of {summary['max_freq']} frequencies used")
plt.tight_layout(), plt.savefig(f"{out}/neurons_per_frequency.png", dpi=120)

# %% Final spectra of 64 neurons (u's power over k)
power = cw.spectra(U, V, W)["power"][:64, 0]  # (64 neurons, ⌊p/2⌋+1 frequencies)
fig, axes = plt.subplots(8, 8, figsize=(10, 8), sharex=True)
for i, a in enumerate(axes.flat):
    a.bar(np.arange(power.shape[1]), power[i], width=1.0)
    a.set_yticks([])
plt.suptitle("power spectra of u_i, 64 neurons"), plt.tight_layout()
plt.savefig(f"{out}/spectra_grid.png", dpi=100)

# %% Phase residuals θu + θv − θw (0 for the max-margin solution)
features = cw.neuron_features(U, V, W, as_frame=True)
plt.figure(figsize=(6, 3.5))
plt.hist(features["residual"], bins=60)
plt.xlabel("θu + θv − θw (rad)"), plt.ylabel("neurons")
plt.title(f"sinusoidal neurons: {int(features['sinusoidal'].sum())} / {len(features)}")
plt.tight_layout(), plt.savefig(f"{out}/phase_residuals.png", dpi=120)
print(f"pictures in {out}/")
