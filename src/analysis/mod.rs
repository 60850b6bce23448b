//! Feature analysis of trained networks (GitHub issue 5): the Fourier view of every
//! neuron, normalized margins against the theory's γ*, progress measures over training,
//! pictures and a per-run HTML report.
//!
//! The pieces, each with one job:
//! - [`fourier`]: batched DFT over Z_n of every u_i, v_i, w_i (powers, phases),
//! - [`basis`]: which basis (additive, or discrete log for a·b and a/b) and which phase
//!   invariant the task calls for,
//! - [`summary`]: per-neuron features and per-model frequency statistics,
//! - [`margin`]: normalized margin of a checkpoint with the engine, and γ*,
//! - [`construct`]: the exact max-margin solution (a known answer for all of the above),
//! - [`construct_gromov`]: Gromov's analytic solution with random phases (his accuracies),
//! - [`heads`]: the per-head report of a run on seed 002's multi-task table (no Fourier
//!   view: its targets are not a group operation on the inputs),
//! - [`progress`]: participation ratios, the init "lottery" check, grokking stages,
//! - [`record`]: the `spectra.jsonl` recorder the training loop calls,
//! - [`rundir`]: loading a run directory,
//! - [`pipeline`]: the whole analysis of one run ([`pipeline::analyze`], handed the
//!   engine backend that evaluates margins),
//! - [`tables`]: its machine-readable outputs (`summary.json` and the CSV tables),
//! - [`plot`] and [`report`]: PNG/SVG pictures and `index.html`,
//! - [`explore`]: `explore.html`, the interactive page (`analyze RUN --explore`),
//! - [`text`]: the human-readable report `analyze` prints,
//! - [`command`]: what the `analyze` command does (the binary only parses and prints),
//! - [`outdir`]: checking and writing an analysis directory the way `analyze` does
//!   (only the files written are replaced, each atomically).
//!
//! Dependencies go one way: `fourier` ← `basis` ← `summary` ← `progress` ← `pipeline` ←
//! `tables`/`report`/`text` ← `outdir`; nothing here constructs an engine backend.

pub mod basis;
pub mod command;
pub mod construct;
pub mod construct_gromov;
pub mod construct_group;
pub mod explore;
pub mod fourier;
pub mod heads;
pub mod irrep_spectra;
mod jsonl;
pub mod margin;
pub mod outdir;
pub mod pipeline;
pub mod plot;
pub mod progress;
pub mod record;
pub mod report;
pub mod rundir;
pub mod summary;
pub mod tables;
pub mod text;
