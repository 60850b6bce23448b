//! The compiled half of the `clockwork` Python package (`clockwork._clockwork`): PyO3
//! bindings of the clockwork crate. The pure-Python half (`python/clockwork/`) re-exports
//! these with the exception classes, pandas tables and the PyTorch interop.
//!
//! - [`config`]: `Config` (presets, dicts, TOML files, overrides; the library's checks),
//! - [`trainer`]: `Trainer` (step, evaluate, weights, state, checkpoints; GIL released),
//! - [`analysis`]: spectra, frequencies, phases, margins, γ*, the construction, run dirs,
//! - [`sweep`]: `Sweep` (sweep files, dicts, plans, resumable runs), merge, directory state,
//! - [`arrays`]: NumPy in and out (where it copies), [`values`]: dicts and TOML values,
//! - [`errors`]: the library's errors as Python exceptions.

use pyo3::prelude::*;

mod analysis;
mod arrays;
mod config;
mod errors;
mod sweep;
mod trainer;
mod values;

/// Fast full-batch training and Fourier/margin analysis of two-layer MLPs on modular
/// arithmetic (the compiled part; use ``import clockwork``).
#[pymodule]
fn _clockwork(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<config::PyConfig>()?;
    m.add_class::<trainer::PyTrainer>()?;
    m.add_function(wrap_pyfunction!(analysis::spectra, m)?)?;
    m.add_function(wrap_pyfunction!(analysis::neuron_features, m)?)?;
    m.add_function(wrap_pyfunction!(analysis::dominant_frequencies, m)?)?;
    m.add_function(wrap_pyfunction!(analysis::phases, m)?)?;
    m.add_function(wrap_pyfunction!(analysis::frequency_summary, m)?)?;
    m.add_function(wrap_pyfunction!(analysis::margin, m)?)?;
    m.add_function(wrap_pyfunction!(analysis::gamma_star, m)?)?;
    m.add_function(wrap_pyfunction!(analysis::construct, m)?)?;
    m.add_function(wrap_pyfunction!(analysis::write_construction, m)?)?;
    m.add_function(wrap_pyfunction!(analysis::load_checkpoint, m)?)?;
    m.add_function(wrap_pyfunction!(analysis::save_weights, m)?)?;
    m.add_function(wrap_pyfunction!(analysis::analyze_run, m)?)?;
    m.add_class::<sweep::PySweep>()?;
    m.add_function(wrap_pyfunction!(sweep::merge_sweeps, m)?)?;
    m.add_function(wrap_pyfunction!(sweep::report_sweep, m)?)?;
    m.add_function(wrap_pyfunction!(sweep::sweep_status, m)?)?;
    m.add_function(wrap_pyfunction!(sweep::sweep_table_files, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
