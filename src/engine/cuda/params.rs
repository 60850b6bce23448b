//! Kernel parameter structs, field for field the `struct`s at the top of
//! `kernels/common.cuh` (8-byte fields first, then 4-byte fields, padded to 8 bytes).
//! [`super::device::Gpu::new`] runs `cw_param_sizes` on the device and refuses to go on if
//! a size differs, so a layout slip shows up as one clear error, not as garbage results.

use cudarc::driver::DeviceRepr;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct FwdParams {
    pub u: u64,
    pub v: u64,
    pub w: u64,
    pub pa: u64,
    pub pb: u64,
    pub py: u64,
    pub g: u64,
    pub row_loss: u64,
    pub row_margin: u64,
    pub emb_stride: i64,
    pub w_stride: i64,
    pub g_stride: i64,
    pub row_stride: i64,
    pub rows: i32,
    pub m: i32,
    pub n_out: i32,
    pub act: i32,
    pub act_k: i32,
    pub loss: i32,
    pub write_g: i32,
    pub fused: i32,
    pub inv_n: f32,
    /// Dense input bits (0: tokens) and the values of a set and a clear bit, packed in
    /// what was padding (kernels/common.cuh says why).
    pub bits: i16,
    pub x_set: i8,
    pub x_clear: i8,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct BwdParams {
    pub u: u64,
    pub v: u64,
    pub w: u64,
    pub pa: u64,
    pub pb: u64,
    pub g: u64,
    pub dw_part: u64,
    pub ds: u64,
    pub emb_stride: i64,
    pub w_stride: i64,
    pub g_stride: i64,
    pub ds_stride: i64,
    pub rows: i32,
    pub m: i32,
    pub n_out: i32,
    pub act: i32,
    pub act_k: i32,
    pub splits: i32,
    pub rows_per_split: i32,
    pub bits: i16,
    pub x_set: i8,
    pub x_clear: i8,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct FinalizeParams {
    pub stats: u64,
    pub norms: u64,
    pub ctl: u64,
    pub ring: u64,
    pub bad: u64,
    pub hypers: u64,
    pub reg_q: f64,
    pub batch: i32,
    pub m: i32,
    pub ring_len: i32,
    pub reg: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ControlParams {
    pub ctl: u64,
    pub bad: u64,
    pub milestones: u64,
    pub ring_lr: u64,
    pub hypers: u64,
    pub model_ctl: u64,
    pub lr_factor: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub warmup_steps: f64,
    pub batch: i32,
    pub n_milestones: i32,
    pub ring_len: i32,
    pub pad0: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct UpdateParams {
    pub u: u64,
    pub v: u64,
    pub w: u64,
    pub du: u64,
    pub dv: u64,
    pub dw: u64,
    pub adam_m: u64,
    pub adam_v: u64,
    pub ema: u64,
    pub ma_ring: u64,
    pub norms: u64,
    pub ctl: u64,
    pub hypers: u64,
    pub model_ctl: u64,
    pub emb_len: i64,
    pub w_len: i64,
    pub ma_stride: i64,
    pub reg_q: f64,
    pub n_in: i32,
    pub n_out: i32,
    pub m: i32,
    pub tied: i32,
    pub kind: i32,
    pub reg: i32,
    pub beta1: f32,
    pub beta2: f32,
    pub one_minus_beta1: f32,
    pub one_minus_beta2: f32,
    pub eps: f32,
    pub ga_alpha: f32,
    pub one_minus_ga_alpha: f32,
    pub grokfast: i32,
    pub ma_window: i32,
    pub ma_warmup: i32,
    pub pad0: i32,
}

// SAFETY: plain #[repr(C)] structs of integers and floats, laid out like their CUDA twins
// (checked at start-up by `cw_param_sizes`).
unsafe impl DeviceRepr for FwdParams {}
unsafe impl DeviceRepr for BwdParams {}
unsafe impl DeviceRepr for FinalizeParams {}
unsafe impl DeviceRepr for ControlParams {}
unsafe impl DeviceRepr for UpdateParams {}

/// Sizes in the order `cw_param_sizes` writes them.
pub(crate) fn host_sizes() -> [usize; 5] {
    [
        std::mem::size_of::<FwdParams>(),
        std::mem::size_of::<BwdParams>(),
        std::mem::size_of::<FinalizeParams>(),
        std::mem::size_of::<ControlParams>(),
        std::mem::size_of::<UpdateParams>(),
    ]
}

/// Control block words (kernels/common.cuh, `CTL_*`).
pub(crate) mod ctl {
    pub const STEP: usize = 0;
    pub const DIVERGED: usize = 1;
    pub const DIVERGED_MODEL: usize = 2;
    pub const DIVERGED_STEP: usize = 3;
    pub const EMA_READY: usize = 4;
    pub const MA_HEAD: usize = 6;
    pub const MA_LEN: usize = 7;
    pub const WORDS: usize = 8;
    /// f64 words per model in the `hypers` buffer (kernels/common.cuh HYPER_*), in
    /// this order: lr, weight decay, regularizer λ, Grokfast λ.
    pub const HYPER_WORDS: usize = 4;
    /// f64 words per model of per-step scalars (`model_ctl`, MCTL_*).
    pub const MCTL_WORDS: usize = 3;
}
