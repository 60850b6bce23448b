//! Feature analysis of trained networks (GitHub issue 5): the Fourier view of every
//! neuron, normalized margins against the theory's γ*, progress measures over training,
//! pictures and a per-run HTML report.
//!
//! The pieces, each with one job:
//! - [`fourier`]: batched DFT over Z_p of every u_i, v_i, w_i (powers, phases),
//! - [`summary`]: per-neuron features and per-model frequency statistics,
//! - [`margin`]: normalized margin of a checkpoint with the engine, and γ*,
//! - [`construct`]: the exact max-margin solution (a known answer for all of the above),
//! - [`progress`]: participation ratios, the init "lottery" check, grokking stages,
//! - [`record`]: the `spectra.jsonl` recorder the training loop calls,
//! - [`rundir`]: loading a run directory,
//! - [`pipeline`]: the whole analysis of one run and its machine-readable outputs,
//! - [`plot`] and [`report`]: PNG/SVG pictures and `index.html`.

pub mod construct;
pub mod fourier;
mod jsonl;
pub mod margin;
pub mod pipeline;
pub mod plot;
pub mod progress;
pub mod record;
pub mod report;
pub mod rundir;
pub mod summary;
