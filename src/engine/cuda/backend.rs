//! [`CudaBackend`]: the [`Backend`] trait on a CUDA device.
//!
//! Each call runs one pass and copies back the statistics and, for `loss_and_grad`, the
//! gradients: one host synchronization per call. What stays on the device between
//! calls is decided in O(1), never by looking at the data:
//!
//! - Weights are uploaded on every call. A cache would have to know whether the
//!   caller's buffers changed since the last upload, which a borrowed slice cannot say
//!   (comparing or hashing them costs as much as the upload); the upload moves the same
//!   bytes as the gradient download every `loss_and_grad` makes anyway, and is small
//!   beside the pass (O(B·p·m) against O(B·p²·m·n_out)).
//! - Pair sets passed as [`crate::engine::FrozenPairs`] (the trainer's train and test
//!   sets) stay resident, looked up by their stamp: a frozen set's contents cannot
//!   change and its stamp is never reused, so a device copy found by stamp is that set's
//!   current contents (the argument is in `engine/pairs.rs`). A plain `&PairSet` may
//!   change between calls, so it is uploaded for its call only.
//!
//! For training without any per-step host round trip the backend offers the trainer a
//! device-resident stepper ([`Backend::resident_stepper`], `stepper.rs`).

use super::device::{enqueue_pass, DevPairs, DevWeights, Dims, Gpu, Plan, WeightPtrs, Workspace};
use super::stepper::{CudaStepper, DEFAULT_READ_EVERY};
use super::Precision;
use crate::engine::stepper::{Stepper, StepperSetup};
use crate::engine::{check_pass, AsPairSet, Backend, CoreSpec, HeadStats, PairsStamp, PassStats};
use crate::error::{Error, Result};
use crate::model::{AsWeightsView, GradsBuffer, WeightsView};
use crate::real::Real;
use std::any::TypeId;
use std::sync::Mutex;

/// How many frozen pair sets stay on the device (train and test, and a spare).
const PAIR_CACHE: usize = 4;

/// The CUDA implementation of [`Backend`]. Computes in f32 (a `Backend<f64>` call gets
/// a clear error). Thread-safe: calls are serialized.
pub struct CudaBackend {
    state: Mutex<State>,
    description: String,
    device: usize,
    precision: Precision,
    /// Steps between metric read-backs of the resident stepper it offers.
    read_every: usize,
}

struct State {
    gpu: Gpu,
    dims: Option<Dims>,
    /// Device buffers the weights of each call are uploaded into.
    weights: Option<DevWeights>,
    grads: Option<DevWeights>,
    /// Resident frozen pair sets by (stamp, chunk rows of their plan), most recently
    /// used last. Cleared with the dims, so one n_in holds for all of them.
    pairs: Vec<((PairsStamp, usize), DevPairs)>,
    /// (grads-capable, workspace) per pair-set size, most recently used last.
    workspaces: Vec<(bool, Workspace)>,
}

impl CudaBackend {
    /// Opens `cuda:device` and compiles the kernels for its architecture (once per
    /// process and precision). Fails with one actionable line when the driver or NVRTC
    /// library is missing, the device does not exist, or a kernel does not compile
    /// (with NVRTC's log).
    pub fn new(device: usize, precision: Precision) -> Result<CudaBackend> {
        let gpu = Gpu::new(device, precision)?;
        Ok(CudaBackend {
            description: gpu.describe(),
            device,
            precision,
            read_every: DEFAULT_READ_EVERY,
            state: Mutex::new(State {
                gpu,
                dims: None,
                weights: None,
                grads: None,
                pairs: Vec::new(),
                workspaces: Vec::new(),
            }),
        })
    }

    /// Sets how many steps the device-resident stepper takes between two metric
    /// read-backs (the size of its device metrics ring; [`DEFAULT_READ_EVERY`] unless
    /// set). Fails for 0.
    pub fn with_read_every(mut self, steps: usize) -> Result<CudaBackend> {
        if steps == 0 {
            return Err(Error::config("read_every", 0, "must be at least 1"));
        }
        self.read_every = steps;
        Ok(self)
    }

    fn run<F: Real>(
        &self,
        core: CoreSpec,
        weights: WeightsView<'_, F>,
        pairs: &dyn AsPairSet,
        grads: Option<&mut dyn GradsBuffer<F>>,
    ) -> Result<Vec<PassStats>> {
        if TypeId::of::<F>() != TypeId::of::<f32>() {
            return Err(Error::backend(format!(
                "the CUDA backend computes in f32, not {}: set dtype = \"f32\" (or use the CPU for f64)",
                F::NAME
            )));
        }
        let set = pairs.pair_set();
        check_pass(&weights, set)?;
        let mut grads = match grads {
            Some(g) => Some(g.fit(weights.shape())?),
            None => None,
        };
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let st = &mut *st;
        let dims = Dims {
            batch: weights.batch(),
            n_in: weights.n_in(),
            n_out: weights.n_out(),
            m: weights.width(),
        };
        if st.dims != Some(dims) {
            st.weights = Some(DevWeights::zeros(&st.gpu, dims)?);
            st.grads = None;
            st.workspaces.clear();
            st.pairs.clear();
            st.dims = Some(dims);
        }
        // Weights: this call's, always (see the module docs).
        {
            let dev = st.weights.as_mut().expect("allocated above");
            st.gpu
                .upload(bytemuck::cast_slice(weights.u()), &mut dev.u)?;
            st.gpu
                .upload(bytemuck::cast_slice(weights.v()), &mut dev.v)?;
            st.gpu
                .upload(bytemuck::cast_slice(weights.w()), &mut dev.w)?;
        }
        let want_grads = grads.is_some();
        let plan = Plan::new(&st.gpu, dims, set.len());
        // Pairs: a frozen set is found by its stamp or uploaded once; a plain one is
        // uploaded for this call.
        let one_off = match pairs.stamp() {
            Some(stamp) => {
                let key = (stamp, plan.chunk_rows);
                touch(
                    &mut st.pairs,
                    |(k, _)| *k == key,
                    || Ok((key, DevPairs::new(&st.gpu, set, dims.n_in, &plan)?)),
                )?;
                None
            }
            None => Some(DevPairs::new(&st.gpu, set, dims.n_in, &plan)?),
        };
        // Workspace for this plan, head count and input kind (a grads-capable one serves
        // evaluation too).
        let n_heads = set.heads.as_ref().map_or(0, |h| h.len());
        let dense = set.inputs.bits().is_some();
        touch(
            &mut st.workspaces,
            |(g, ws)| {
                ws.plan == plan && ws.n_heads == n_heads && ws.dense == dense && (*g || !want_grads)
            },
            || {
                let ws = Workspace::new(&st.gpu, dims, plan, want_grads, n_heads, dense)?;
                Ok((want_grads, ws))
            },
        )?;
        if want_grads && st.grads.is_none() {
            st.grads = Some(DevWeights::zeros(&st.gpu, dims)?);
        }
        let gpu = &st.gpu;
        let dev = st.weights.as_ref().expect("allocated above");
        let wp = WeightPtrs {
            u: gpu.ptr(&dev.u),
            v: gpu.ptr(&dev.v),
            w: gpu.ptr(&dev.w),
        };
        let gp = st.grads.as_ref().map(|g| WeightPtrs {
            u: gpu.ptr(&g.u),
            v: gpu.ptr(&g.v),
            w: gpu.ptr(&g.w),
        });
        let dev_pairs = match &one_off {
            Some(p) => p,
            None => &st.pairs.last().expect("inserted above").1,
        };
        let (_, ws) = st.workspaces.last().expect("inserted above");
        enqueue_pass(
            gpu,
            core,
            wp,
            dev_pairs,
            ws,
            if want_grads { gp } else { None },
        )?;
        let raw = gpu.download(&ws.stats)?;
        let head_stats = if n_heads > 0 {
            let loss = gpu.download(&ws.head_loss)?;
            let margin = gpu.download(&ws.head_margin)?;
            head_sums(&loss, &margin, dims.batch, n_heads, set.len())
        } else {
            vec![Vec::new(); dims.batch]
        };
        let stats = head_stats
            .into_iter()
            .enumerate()
            .map(|(k, heads)| PassStats {
                loss: raw[3 * k],
                correct: raw[3 * k + 1] as usize,
                count: set.len(),
                min_margin: raw[3 * k + 2],
                heads,
            })
            .collect();
        if let Some(out) = grads.as_mut() {
            let g = st.grads.as_ref().expect("allocated above");
            let (gu, gv, gw) = out.parts_mut();
            gpu.download_into(&g.u, bytemuck::cast_slice_mut(gu))?;
            gpu.download_into(&g.v, bytemuck::cast_slice_mut(gv))?;
            gpu.download_into(&g.w, bytemuck::cast_slice_mut(gw))?;
        }
        Ok(stats)
    }
}

/// Each model's per-head figures from the per-row head losses and margins `heads_rows`
/// wrote (`[batch][n_heads][n]` each): the loss summed in row order in f64 then divided
/// by `n`, so the result is deterministic.
fn head_sums(
    loss: &[f32],
    margin: &[f32],
    batch: usize,
    n_heads: usize,
    n: usize,
) -> Vec<Vec<HeadStats>> {
    (0..batch)
        .map(|k| {
            (0..n_heads)
                .map(|h| {
                    let at = (k * n_heads + h) * n;
                    let mut s = HeadStats::zeros(1)[0];
                    for (&l, &m) in loss[at..at + n].iter().zip(&margin[at..at + n]) {
                        s.add_pair(l as f64, m as f64);
                    }
                    s.loss /= n as f64;
                    s
                })
                .collect()
        })
        .collect()
}

/// Makes the entry `find` picks the most recently used (last) of `cache`, or appends
/// `make()`'s, dropping the least recently used beyond [`PAIR_CACHE`] entries.
fn touch<T>(
    cache: &mut Vec<T>,
    find: impl Fn(&T) -> bool,
    make: impl FnOnce() -> Result<T>,
) -> Result<()> {
    match cache.iter().position(find) {
        Some(i) => {
            let entry = cache.remove(i);
            cache.push(entry);
        }
        None => {
            if cache.len() >= PAIR_CACHE {
                cache.remove(0);
            }
            cache.push(make()?);
        }
    }
    Ok(())
}

impl<F: Real> Backend<F> for CudaBackend {
    fn describe(&self) -> String {
        self.description.clone()
    }

    fn loss_and_grad(
        &self,
        core: CoreSpec,
        weights: &dyn AsWeightsView<F>,
        pairs: &dyn AsPairSet,
        grads: &mut dyn GradsBuffer<F>,
    ) -> Result<Vec<PassStats>> {
        self.run(core, weights.weights_view(), pairs, Some(grads))
    }

    fn evaluate(
        &self,
        core: CoreSpec,
        weights: &dyn AsWeightsView<F>,
        pairs: &dyn AsPairSet,
    ) -> Result<Vec<PassStats>> {
        self.run(core, weights.weights_view(), pairs, None)
    }

    fn resident_stepper(&self, setup: &StepperSetup<F>) -> Result<Option<Box<dyn Stepper<F>>>> {
        if !CudaStepper::covers(setup) {
            return Ok(None);
        }
        let gpu = Gpu::new(self.device, self.precision)?;
        Ok(Some(Box::new(CudaStepper::new(
            gpu,
            setup,
            self.read_every,
        )?)))
    }
}
