//! Host side of the kernels: context, modules, buffers, and the launch sequence of one
//! pass (forward + loss, optionally backward) over a pair set. Shared by
//! [`super::CudaBackend`] and the device-resident stepper.
//!
//! The buffers a pass fills live in `buffers.rs`.
//!
//! Everything here only *enqueues* work on one stream (no host synchronization), so the
//! same sequence can be captured into a CUDA graph. cudarc's per-buffer event tracking
//! is switched off: there is one stream and the launches are ordered on it.
//!
//! Debugging tips for the first GPU session: set `CLOCKWORK_CUDA_SYNC=1` to synchronize
//! and check for errors after every launch (names the failing kernel; not usable while a
//! graph is being captured, so the trainer then skips the graph), and compare against
//! the CPU with `cargo test --release --test cuda_vs_cpu -- --nocapture`.

pub(crate) use super::buffers::{DevPairs, DevWeights, Dims, Plan, Workspace};
use super::kernels::{compile_cached, FILES};
use super::params::{host_sizes, BwdParams, FwdParams};
use super::Precision;
use crate::engine::{CoreSpec, Loss};
use crate::error::{Error, Result};
use crate::model::Activation;
use cudarc::driver::{
    CudaContext, CudaFunction, CudaSlice, CudaStream, DevicePtr, DeviceRepr, LaunchConfig,
    PushKernelArg, ValidAsZeroBits,
};
use std::collections::HashMap;
use std::sync::Arc;

/// Rows of the forward tile (pairs per block): kernels/fused_forward_ce.cu `FwdCfg::BM`.
pub(super) const FWD_BM: usize = 64;
/// K slab depth of every GEMM (`TileCfg::BK`).
pub(super) const SLAB: usize = 16;
/// Least rows of one dW split (so a split runs at least 16 slabs).
pub(super) const MIN_SPLIT_ROWS: usize = 256;
/// Default budget for the per-chunk buffers (logits/G, dS, dW partials), in MiB.
pub(super) const DEFAULT_CHUNK_MIB: usize = 768;

pub(crate) fn driver_err(what: &str) -> impl Fn(cudarc::driver::DriverError) -> Error + '_ {
    move |e| Error::backend_from(format!("CUDA error in {what}: {e}"), e)
}

/// One CUDA device with the kernels loaded.
pub(crate) struct Gpu {
    pub stream: Arc<CudaStream>,
    pub precision: Precision,
    pub name: String,
    pub arch: String,
    pub sms: usize,
    pub ordinal: usize,
    funcs: HashMap<&'static str, CudaFunction>,
    /// Launch-by-launch synchronization (CLOCKWORK_CUDA_SYNC=1).
    pub sync_each: bool,
}

impl Gpu {
    /// Opens `cuda:ordinal`, compiles (once per process) and loads every kernel file.
    pub fn new(ordinal: usize, precision: Precision) -> Result<Gpu> {
        super::probe(ordinal)?;
        let ctx = CudaContext::new(ordinal).map_err(|e| {
            Error::backend_from(format!("cannot open CUDA device cuda:{ordinal}: {e}"), e)
        })?;
        // One stream, launches ordered on it: no per-buffer events (they would also get in
        // the way of graph capture).
        // SAFETY: called before any buffer exists.
        unsafe { ctx.disable_event_tracking() };
        let stream = ctx.new_stream().map_err(driver_err("cuStreamCreate"))?;
        let (major, minor) = ctx
            .compute_capability()
            .map_err(driver_err("compute capability"))?;
        if major < 8 {
            return Err(Error::backend(format!(
                "cuda:{ordinal} has compute capability {major}.{minor}; the kernels need 8.0 or newer (Ampere+)"
            )));
        }
        let arch = format!("compute_{major}{minor}");
        let name = ctx.name().unwrap_or_else(|_| "unknown GPU".into());
        let sms = ctx
            .attribute(
                cudarc::driver::sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT,
            )
            .map_err(driver_err("SM count"))? as usize;
        let mut funcs = HashMap::new();
        for file in &FILES {
            let ptx = compile_cached(file, &arch, precision)?;
            let module = ctx
                .load_module(cudarc::nvrtc::Ptx::from_src(ptx.as_str()))
                .map_err(|e| {
                    Error::backend_from(
                        format!(
                            "cannot load the PTX of {} on cuda:{ordinal} ({arch}): {e} \
                         (PTX from an NVRTC newer than the driver does not load: use the \
                         NVRTC that comes with the driver's CUDA version)",
                            file.path
                        ),
                        e,
                    )
                })?;
            for &k in file.kernels {
                let f = module.load_function(k).map_err(|e| {
                    Error::backend_from(format!("kernel {k} missing from {}: {e}", file.path), e)
                })?;
                funcs.insert(k, f);
            }
        }
        let gpu = Gpu {
            stream,
            precision,
            name,
            arch,
            sms,
            ordinal,
            funcs,
            sync_each: std::env::var("CLOCKWORK_CUDA_SYNC").is_ok_and(|v| v == "1"),
        };
        gpu.check_param_layout()?;
        Ok(gpu)
    }

    pub fn describe(&self) -> String {
        format!(
            "cuda:{} ({}, {} SMs, {}, {})",
            self.ordinal, self.name, self.sms, self.arch, self.precision
        )
    }

    fn func(&self, name: &str) -> &CudaFunction {
        self.funcs
            .get(name)
            .unwrap_or_else(|| panic!("kernel {name} is listed in kernels.rs FILES"))
    }

    /// The kernels' idea of the parameter structs' sizes must match ours.
    fn check_param_layout(&self) -> Result<()> {
        let out = self.alloc::<i32>(8)?;
        let p = self.ptr(&out);
        let f = self.func("cw_param_sizes");
        let mut b = self.stream.launch_builder(f);
        b.arg(&p);
        // SAFETY: the kernel writes 5 ints into an 8-int buffer.
        unsafe { b.launch(cfg((1, 1, 1), (1, 1, 1))) }.map_err(driver_err("cw_param_sizes"))?;
        let dev = self.download(&out)?;
        let host = host_sizes();
        for (i, &h) in host.iter().enumerate() {
            if dev[i] as usize != h {
                return Err(Error::backend(format!(
                    "kernel parameter struct #{i} is {} bytes on the device but {h} on the host: \
                     kernels/common.cuh and src/engine/cuda/params.rs disagree",
                    dev[i]
                )));
            }
        }
        Ok(())
    }

    /// A zeroed device buffer of `n` elements (at least one, so every pointer is valid).
    pub fn alloc<T: DeviceRepr + ValidAsZeroBits>(&self, n: usize) -> Result<CudaSlice<T>> {
        self.stream.alloc_zeros::<T>(n.max(1)).map_err(|e| {
            Error::backend_from(
                format!(
                    "cannot allocate {} MiB on cuda:{}: {e}",
                    (n * std::mem::size_of::<T>()) >> 20,
                    self.ordinal
                ),
                e,
            )
        })
    }

    /// Raw device address (event tracking is off, so this never synchronizes).
    pub fn ptr<T>(&self, s: &CudaSlice<T>) -> u64 {
        let (p, _sync) = s.device_ptr(&self.stream);
        p
    }

    pub fn upload<T: DeviceRepr>(&self, host: &[T], dst: &mut CudaSlice<T>) -> Result<()> {
        self.stream
            .memcpy_htod(host, dst)
            .map_err(driver_err("host-to-device copy"))
    }

    /// Copies a whole buffer to the host (waits for everything queued before it).
    pub fn download<T: DeviceRepr + Clone + Default>(&self, src: &CudaSlice<T>) -> Result<Vec<T>> {
        let mut host = vec![T::default(); src.len()];
        self.download_into(src, &mut host)?;
        Ok(host)
    }

    /// Copies the first `host.len()` elements of `src` to the host.
    pub fn download_into<T: DeviceRepr>(&self, src: &CudaSlice<T>, host: &mut [T]) -> Result<()> {
        let view = src.slice(0..host.len());
        self.stream
            .memcpy_dtoh(&view, host)
            .map_err(driver_err("device-to-host copy"))?;
        self.sync()
    }

    pub fn sync(&self) -> Result<()> {
        self.stream
            .synchronize()
            .map_err(driver_err("stream synchronize"))
    }

    /// Launches `kernel` with one by-value parameter struct.
    pub fn launch_struct<P: DeviceRepr>(
        &self,
        kernel: &str,
        grid: (u32, u32, u32),
        block: (u32, u32, u32),
        params: &P,
    ) -> Result<()> {
        let mut b = self.stream.launch_builder(self.func(kernel));
        b.arg(params);
        // SAFETY: `params` mirrors the kernel's struct (checked at start-up); the grids
        // below are sized so every access stays inside the buffers it names.
        unsafe { b.launch(cfg(grid, block)) }.map_err(driver_err(kernel))?;
        self.after_launch(kernel)
    }

    /// Starts a launch with arbitrary arguments; finish with [`Gpu::finish`].
    pub fn builder(&self, kernel: &str) -> cudarc::driver::LaunchArgs<'_> {
        self.stream.launch_builder(self.func(kernel))
    }

    pub fn finish(
        &self,
        kernel: &str,
        mut b: cudarc::driver::LaunchArgs<'_>,
        grid: (u32, u32, u32),
        block: (u32, u32, u32),
    ) -> Result<()> {
        // SAFETY: as in launch_struct; the caller pushed the kernel's arguments in order.
        unsafe { b.launch(cfg(grid, block)) }.map_err(driver_err(kernel))?;
        self.after_launch(kernel)
    }

    fn after_launch(&self, kernel: &str) -> Result<()> {
        if self.sync_each {
            self.stream.synchronize().map_err(|e| {
                Error::backend_from(format!("CUDA error in kernel {kernel}: {e}"), e)
            })?;
        }
        Ok(())
    }
}

fn cfg(grid: (u32, u32, u32), block: (u32, u32, u32)) -> LaunchConfig {
    LaunchConfig {
        grid_dim: grid,
        block_dim: block,
        shared_mem_bytes: 0,
    }
}

fn blocks(n: usize, per: usize) -> u32 {
    n.div_ceil(per).max(1) as u32
}

fn act_code(a: Activation) -> (i32, i32) {
    match a {
        Activation::Square => (0, 2),
        Activation::Relu => (1, 1),
        Activation::Pow(k) => (2, k as i32),
    }
}

/// `out = [out +] Σ_split part[split]` for every model's `n` elements (`dw_reduce`).
fn sum_partials(
    gpu: &Gpu,
    part: u64,
    out: u64,
    splits: usize,
    n: usize,
    accumulate: bool,
    batch: u32,
) -> Result<()> {
    let (s, len, acc) = (splits as i32, n as i64, accumulate as i32);
    let mut b = gpu.builder("dw_reduce");
    b.arg(&part).arg(&out).arg(&s).arg(&len).arg(&acc);
    gpu.finish("dw_reduce", b, (blocks(n, 256), batch, 1), (256, 1, 1))
}

/// Raw addresses of U, V, W (V may equal U for tied weights in the trainer).
#[derive(Clone, Copy, Debug)]
pub(crate) struct WeightPtrs {
    pub u: u64,
    pub v: u64,
    pub w: u64,
}

/// Enqueues one pass: forward + loss epilogue for every chunk and, when `grads` is
/// given, the backward products and reductions into `grads` (overwritten). Per-model
/// statistics land in `ws.stats`. No synchronization.
pub(crate) fn enqueue_pass(
    gpu: &Gpu,
    core: CoreSpec,
    weights: WeightPtrs,
    pairs: &DevPairs,
    ws: &Workspace,
    grads: Option<WeightPtrs>,
) -> Result<()> {
    let d = ws.dims;
    let plan = ws.plan;
    if d.batch > 65535 {
        return Err(Error::config(
            "models",
            d.batch,
            "the CUDA kernels take at most 65535 models per batch (gridDim.z)",
        ));
    }
    debug_assert_eq!(pairs.len, plan.n_pairs);
    debug_assert_eq!(pairs.chunk_rows, plan.chunk_rows);
    let (act, act_k) = act_code(core.activation);
    let loss = match core.loss {
        Loss::CrossEntropy => 0,
        Loss::Mse => 1,
    };
    let (pa, pb, py) = (gpu.ptr(&pairs.a), gpu.ptr(&pairs.b), gpu.ptr(&pairs.y));
    let (g, ds, dw_part) = (gpu.ptr(&ws.g), gpu.ptr(&ws.ds), gpu.ptr(&ws.dw_part));
    let (row_loss, row_margin) = (gpu.ptr(&ws.row_loss), gpu.ptr(&ws.row_margin));
    let (ptr_a, rows_a) = (gpu.ptr(&pairs.ptr_a), gpu.ptr(&pairs.rows_a));
    let (ptr_b, rows_b) = (gpu.ptr(&pairs.ptr_b), gpu.ptr(&pairs.rows_b));
    let batch = d.batch as u32;
    // A dense (bit-string) pass builds the hidden layer from the masks: the *_bits twins
    // of the forward and backward kernels, and dense_du_partial for dU (module docs of
    // kernels/dense_input.cu).
    let dense = pairs.dense;
    if ws.dense != dense.is_some() {
        return Err(Error::backend(
            "internal: a CUDA workspace sized for the other input kind (dense vs tokens)",
        ));
    }
    let (bits, x_set, x_clear) = dense.map_or((0, 0, 0), |b| (b.bits, b.x_set, b.x_clear));
    let (bn, fwd_kernel, fwd_threads) = match (d.n_out, dense.is_some()) {
        (0..=32, false) => (32, "fwd_ce_bn32", 128),
        (33..=64, false) => (64, "fwd_ce_bn64", 128),
        (_, false) => (128, "fwd_ce_bn128", 256),
        (0..=32, true) => (32, "fwd_ce_bits_bn32", 128),
        (33..=64, true) => (64, "fwd_ce_bits_bn64", 128),
        (_, true) => (128, "fwd_ce_bits_bn128", 256),
    };
    if let (Some(gr), Some(_)) = (grads, dense) {
        // V is absent from a dense model: its gradient is zero (no kernel writes it).
        // SAFETY: gr.v addresses the batch's B·n_in·m floats of the V gradient, allocated
        // on this stream's context; the memset is ordered on the stream like a launch.
        unsafe {
            cudarc::driver::result::memset_d8_async(
                gr.v,
                0,
                4 * d.batch * d.emb_len(),
                gpu.stream.cu_stream(),
            )
        }
        .map_err(driver_err("cuMemsetD8Async (dV = 0)"))?;
    }
    // A multi-head pass always takes the unfused forward and `heads_rows` (module docs
    // of kernels/fused_forward_ce.cu).
    let fused = d.n_out <= bn && pairs.heads.is_none();
    if pairs.heads.as_ref().map_or(0, |h| h.count) != ws.n_heads {
        return Err(Error::backend(
            "internal: a CUDA workspace sized for another head count",
        ));
    }
    for (c, (start, rows)) in plan.chunks().into_iter().enumerate() {
        let fwd = FwdParams {
            u: weights.u,
            v: weights.v,
            w: weights.w,
            pa: pa + 4 * start as u64,
            pb: pb + 4 * start as u64,
            py: py + 4 * start as u64,
            g,
            row_loss: row_loss + 4 * start as u64,
            row_margin: row_margin + 4 * start as u64,
            emb_stride: d.emb_len() as i64,
            w_stride: d.w_len() as i64,
            g_stride: (rows * d.n_out) as i64,
            row_stride: plan.n_pairs as i64,
            rows: rows as i32,
            m: d.m as i32,
            n_out: d.n_out as i32,
            act,
            act_k,
            loss,
            write_g: grads.is_some() as i32,
            fused: fused as i32,
            inv_n: (1.0 / plan.n_pairs as f64) as f32,
            bits,
            x_set,
            x_clear,
        };
        gpu.launch_struct(
            fwd_kernel,
            (blocks(d.n_out, bn), blocks(rows, FWD_BM), batch),
            (fwd_threads, 1, 1),
            &fwd,
        )?;
        if let Some(heads) = &pairs.heads {
            let n_heads = heads.count as i32;
            let at = 4 * start as u64;
            let (head_loss, head_margin) =
                (gpu.ptr(&ws.head_loss) + at, gpu.ptr(&ws.head_margin) + at);
            let (offset, size, weight) = (
                gpu.ptr(&heads.offset),
                gpu.ptr(&heads.size),
                gpu.ptr(&heads.weight),
            );
            let mut b = gpu.builder("heads_rows");
            b.arg(&fwd)
                .arg(&offset)
                .arg(&size)
                .arg(&weight)
                .arg(&n_heads)
                .arg(&head_loss)
                .arg(&head_margin);
            gpu.finish("heads_rows", b, (blocks(rows, 8), 1, batch), (256, 1, 1))?;
        } else if !fused {
            gpu.launch_struct("ce_rows", (blocks(rows, 8), 1, batch), (256, 1, 1), &fwd)?;
        }
        let Some(gr) = grads else { continue };
        let (splits, per_split) = plan.splits(gpu, d, rows);
        // dW goes straight to the gradient when there is nothing to add up.
        let direct = splits == 1 && c == 0;
        let mut bwd = BwdParams {
            u: weights.u,
            v: weights.v,
            w: weights.w,
            pa: fwd.pa,
            pb: fwd.pb,
            g,
            dw_part: if direct { gr.w } else { dw_part },
            ds,
            emb_stride: d.emb_len() as i64,
            w_stride: d.w_len() as i64,
            g_stride: fwd.g_stride,
            ds_stride: (rows * d.m) as i64,
            rows: rows as i32,
            m: d.m as i32,
            n_out: d.n_out as i32,
            act,
            act_k,
            splits: splits as i32,
            rows_per_split: per_split as i32,
            bits,
            x_set,
            x_clear,
        };
        let (dw_kernel, bm) = match (d.n_out <= 32, dense.is_some()) {
            (true, false) => ("dw_partial_m32", 32),
            (false, false) => ("dw_partial", 64),
            (true, true) => ("dw_partial_bits_m32", 32),
            (false, true) => ("dw_partial_bits", 64),
        };
        gpu.launch_struct(
            dw_kernel,
            (blocks(d.m, 64), blocks(d.n_out, bm), batch * splits as u32),
            (128, 1, 1),
            &bwd,
        )?;
        if !direct {
            sum_partials(gpu, dw_part, gr.w, splits, d.w_len(), c > 0, batch)?;
        }
        bwd.dw_part = dw_part;
        gpu.launch_struct(
            if dense.is_some() {
                "dhidden_bits"
            } else {
                "dhidden"
            },
            (blocks(d.m, 64), blocks(rows, 64), batch),
            (128, 1, 1),
            &bwd,
        )?;
        if dense.is_some() {
            // dU = Xᵀ·dS split over rows like dW (the same splits: one 32-bit tile of
            // bits has as many tiles as dW's n_out ≤ 32 one), straight to dU when direct.
            bwd.dw_part = if direct { gr.u } else { dw_part };
            gpu.launch_struct(
                "dense_du_partial",
                (blocks(d.m, 64), 1, batch * splits as u32),
                (128, 1, 1),
                &bwd,
            )?;
            if !direct {
                sum_partials(gpu, dw_part, gr.u, splits, d.emb_len(), c > 0, batch)?;
            }
            continue;
        }
        let ptr_off = 4 * (c * (d.n_in + 1)) as u64;
        let rows_off = 4 * start as u64;
        let (ca, cra, cb, crb) = (
            ptr_a + ptr_off,
            rows_a + rows_off,
            ptr_b + ptr_off,
            rows_b + rows_off,
        );
        let ds_stride = bwd.ds_stride;
        let emb_stride = d.emb_len() as i64;
        let (n_in, m, acc) = (d.n_in as i32, d.m as i32, (c > 0) as i32);
        let mut b = gpu.builder("embed_segsum");
        b.arg(&ds)
            .arg(&ds_stride)
            .arg(&ca)
            .arg(&cra)
            .arg(&cb)
            .arg(&crb)
            .arg(&gr.u)
            .arg(&gr.v)
            .arg(&emb_stride)
            .arg(&n_in)
            .arg(&m)
            .arg(&acc);
        gpu.finish(
            "embed_segsum",
            b,
            (blocks(d.m, 128), (2 * d.n_in) as u32, batch),
            (128, 1, 1),
        )?;
    }
    let stats = gpu.ptr(&ws.stats);
    let row_stride = plan.n_pairs as i64;
    let n_rows = plan.n_pairs as i32;
    let inv_n = 1.0 / plan.n_pairs as f64;
    let mut b = gpu.builder("reduce_stats");
    b.arg(&row_loss)
        .arg(&row_margin)
        .arg(&row_stride)
        .arg(&n_rows)
        .arg(&inv_n)
        .arg(&stats);
    gpu.finish("reduce_stats", b, (batch, 1, 1), (256, 1, 1))
}
