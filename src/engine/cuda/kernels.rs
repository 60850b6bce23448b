//! The kernel sources (kernels/*.cu, embedded at build time) and their NVRTC compilation.
//!
//! Every `.cu` file is compiled as one string: the headers (`kernels/common.cuh`, then
//! `kernels/bit_inputs.cuh`) followed by the file, with `#line` markers so NVRTC's
//! messages name the right file and line. The GEMM files
//! are compiled once per precision (`-DCW_MMA=0/1/2`); the others do not depend on it.
//! PTX is cached per (file, architecture, precision) for the life of the process.

use super::Precision;
use crate::error::{Error, Result};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// The headers prepended to every kernel file, in order, as (path, source).
pub const HEADERS: [(&str, &str); 2] = [
    (
        "kernels/common.cuh",
        include_str!("../../../kernels/common.cuh"),
    ),
    (
        "kernels/bit_inputs.cuh",
        include_str!("../../../kernels/bit_inputs.cuh"),
    ),
];

/// One kernel file.
#[derive(Clone, Copy, Debug)]
pub struct KernelFile {
    /// Path relative to the repository root, e.g. `kernels/reduce.cu`.
    pub path: &'static str,
    /// The file's CUDA C++ source, without the [`HEADERS`] (see [`KernelFile::full_source`]).
    pub source: &'static str,
    /// Whether the file's code depends on `CW_MMA` (the GEMM kernels).
    pub precision_dependent: bool,
    /// The `extern "C"` kernels it defines.
    pub kernels: &'static [&'static str],
}

/// Every kernel file, in the order the host loads them.
pub const FILES: [KernelFile; 5] = [
    KernelFile {
        path: "kernels/fused_forward_ce.cu",
        source: include_str!("../../../kernels/fused_forward_ce.cu"),
        precision_dependent: true,
        kernels: &[
            "fwd_ce_bn32",
            "fwd_ce_bn64",
            "fwd_ce_bn128",
            "fwd_ce_bits_bn32",
            "fwd_ce_bits_bn64",
            "fwd_ce_bits_bn128",
            "ce_rows",
            "heads_rows",
        ],
    },
    KernelFile {
        path: "kernels/fused_backward.cu",
        source: include_str!("../../../kernels/fused_backward.cu"),
        precision_dependent: true,
        kernels: &[
            "dw_partial",
            "dw_partial_m32",
            "dhidden",
            "dw_partial_bits",
            "dw_partial_bits_m32",
            "dhidden_bits",
        ],
    },
    KernelFile {
        path: "kernels/dense_input.cu",
        source: include_str!("../../../kernels/dense_input.cu"),
        precision_dependent: true,
        kernels: &["dense_du_partial"],
    },
    KernelFile {
        path: "kernels/reduce.cu",
        source: include_str!("../../../kernels/reduce.cu"),
        precision_dependent: false,
        kernels: &[
            "dw_reduce",
            "embed_segsum",
            "reduce_stats",
            "cw_param_sizes",
        ],
    },
    KernelFile {
        path: "kernels/optimizer_update.cu",
        source: include_str!("../../../kernels/optimizer_update.cu"),
        precision_dependent: false,
        kernels: &[
            "neuron_norms",
            "finalize_models",
            "step_control",
            "update_params",
            "advance_step",
        ],
    },
];

/// The kernels of a training step (the ones that must not spill registers).
pub const STEP_KERNELS: [&str; 20] = [
    "fwd_ce_bn32",
    "fwd_ce_bn64",
    "fwd_ce_bn128",
    "fwd_ce_bits_bn32",
    "fwd_ce_bits_bn64",
    "fwd_ce_bits_bn128",
    "ce_rows",
    "heads_rows",
    "dw_partial",
    "dw_partial_m32",
    "dhidden",
    "dw_partial_bits",
    "dw_partial_bits_m32",
    "dhidden_bits",
    "dense_du_partial",
    "dw_reduce",
    "embed_segsum",
    "reduce_stats",
    "neuron_norms",
    "update_params",
];

impl KernelFile {
    /// The complete source handed to NVRTC.
    pub fn full_source(&self) -> String {
        let mut text = String::new();
        for (path, source) in HEADERS {
            text.push_str(&format!("#line 1 \"{path}\"\n{source}\n"));
        }
        text.push_str(&format!("#line 1 \"{}\"\n{}", self.path, self.source));
        text
    }
}

/// NVRTC options for `arch` (e.g. `compute_90`) and `precision`.
pub fn nvrtc_options(arch: &str, precision: Precision) -> Vec<String> {
    let mut opts = vec![
        format!("--gpu-architecture={arch}"),
        "-std=c++17".to_string(),
        format!("-DCW_MMA={}", precision.mma_code()),
        "-lineinfo".to_string(),
    ];
    // Only needed if a kernel ever includes a CUDA header (none does today).
    if let Ok(dir) = std::env::var("CLOCKWORK_CUDA_INCLUDE") {
        if !dir.is_empty() {
            opts.push(format!("--include-path={dir}"));
        }
    }
    opts
}

/// Whether the NVRTC library can be loaded, or the one-line reason it cannot.
pub fn nvrtc_status() -> std::result::Result<(), String> {
    // SAFETY: only tries to dlopen the library by its candidate names.
    if unsafe { cudarc::nvrtc::sys::is_culib_present() } {
        Ok(())
    } else {
        Err(
            "libnvrtc not found (looked for libnvrtc.so, libnvrtc.so.13, libnvrtc.so.12, ...): \
             install NVRTC (scripts/test.sh installs nvidia-cuda-nvrtc-cu12 into its cache) and \
             put the directory holding it in LD_LIBRARY_PATH before starting the program"
                .to_string(),
        )
    }
}

/// Compiles one kernel file to PTX. Errors carry NVRTC's log.
pub fn compile(file: &KernelFile, arch: &str, precision: Precision) -> Result<String> {
    nvrtc_status().map_err(|e| Error::backend(format!("CUDA unavailable: {e}")))?;
    let opts = cudarc::nvrtc::CompileOptions {
        options: nvrtc_options(arch, precision),
        name: Some(file.path.to_string()),
        ..Default::default()
    };
    match cudarc::nvrtc::compile_ptx_with_opts(file.full_source(), opts) {
        Ok(ptx) => Ok(ptx.to_src()),
        Err(cudarc::nvrtc::CompileError::CompileError { log, options, .. }) => {
            Err(Error::backend(format!(
                "NVRTC failed to compile {} for {arch} ({precision}) with {options:?}:\n{}",
                file.path,
                log.to_string_lossy().trim_end()
            )))
        }
        Err(e) => Err(Error::backend_from(
            format!("NVRTC failed on {} for {arch}: {e}", file.path),
            e,
        )),
    }
}

type PtxKey = (&'static str, String, Option<Precision>);

/// [`compile`] with a per-process cache: each (file, arch, precision) compiles once.
pub fn compile_cached(file: &KernelFile, arch: &str, precision: Precision) -> Result<Arc<String>> {
    static CACHE: OnceLock<Mutex<HashMap<PtxKey, Arc<String>>>> = OnceLock::new();
    let key = (
        file.path,
        arch.to_string(),
        file.precision_dependent.then_some(precision),
    );
    let cache = CACHE.get_or_init(Default::default);
    if let Some(ptx) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return Ok(ptx.clone());
    }
    let ptx = Arc::new(compile(file, arch, precision)?);
    cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key, ptx.clone());
    Ok(ptx)
}
