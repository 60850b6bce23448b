//! [`CudaBackend`]: the [`Backend`] trait on a CUDA device.
//!
//! Each call uploads only what changed since the previous call (weights are compared
//! with a host copy of the last upload; pair sets are cached on the device, the last
//! few by content), runs one pass and copies back the statistics and, for
//! `loss_and_grad`, the gradients: one host synchronization per call. For training
//! without any per-step host round trip it offers the trainer a device-resident stepper
//! ([`Backend::resident_stepper`], `stepper.rs`).

use super::device::{enqueue_pass, DevPairs, DevWeights, Dims, Gpu, Plan, WeightPtrs, Workspace};
use super::stepper::{CudaStepper, DEFAULT_READ_EVERY};
use super::Precision;
use crate::engine::stepper::{Stepper, StepperSetup};
use crate::engine::{check_pairs, Backend, CoreSpec, PassStats};
use crate::error::{Error, Result};
use crate::model::Weights;
use crate::real::Real;
use crate::task::PairSet;
use std::any::TypeId;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;

/// How many distinct pair sets stay on the device (train and test, and a spare).
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
    weights: Option<DevWeights>,
    /// Host copies of what `weights` holds, to upload only what changed.
    uploaded: [Vec<f32>; 3],
    grads: Option<DevWeights>,
    /// (content key, pairs), most recently used last.
    pairs: Vec<(u64, DevPairs)>,
    /// (grads-capable, workspace) per pair-set size, most recently used last.
    workspaces: Vec<(bool, Workspace)>,
}

fn pair_key(pairs: &PairSet, n_in: usize, chunk_rows: usize) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (pairs.len(), n_in, chunk_rows).hash(&mut h);
    pairs.a.hash(&mut h);
    pairs.b.hash(&mut h);
    pairs.label.hash(&mut h);
    h.finish()
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
                uploaded: Default::default(),
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
        weights: &Weights<F>,
        pairs: &PairSet,
        grads: Option<&mut Weights<F>>,
    ) -> Result<Vec<PassStats>> {
        if TypeId::of::<F>() != TypeId::of::<f32>() {
            return Err(Error::Backend(format!(
                "the CUDA backend computes in f32, not {}: set dtype = \"f32\" (or use the CPU for f64)",
                F::NAME
            )));
        }
        check_pairs(weights, pairs)?;
        if pairs.is_empty() {
            return Err(Error::config(
                "pairs",
                0,
                "cannot run a pass over zero pairs",
            ));
        }
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let st = &mut *st;
        let dims = Dims {
            batch: weights.batch,
            n_in: weights.n_in,
            n_out: weights.n_out,
            m: weights.width,
        };
        if st.dims != Some(dims) {
            st.weights = Some(DevWeights::zeros(&st.gpu, dims)?);
            st.grads = None;
            st.uploaded = Default::default();
            st.workspaces.clear();
            st.pairs.clear();
            st.dims = Some(dims);
        }
        // Weights: upload the fields that differ from the last upload.
        let host: [&[f32]; 3] = [
            bytemuck::cast_slice(&weights.u),
            bytemuck::cast_slice(&weights.v),
            bytemuck::cast_slice(&weights.w),
        ];
        {
            let dev = st.weights.as_mut().expect("allocated above");
            let dst = [&mut dev.u, &mut dev.v, &mut dev.w];
            for ((h, d), last) in host.into_iter().zip(dst).zip(st.uploaded.iter_mut()) {
                if last.as_slice() != h {
                    st.gpu.upload(h, d)?;
                    last.clear();
                    last.extend_from_slice(h);
                }
            }
        }
        let want_grads = grads.is_some();
        let plan = Plan::new(&st.gpu, dims, pairs.len());
        // Pair set: cached by content.
        let key = pair_key(pairs, dims.n_in, plan.chunk_rows);
        match st.pairs.iter().position(|(k, _)| *k == key) {
            Some(i) => {
                let entry = st.pairs.remove(i);
                st.pairs.push(entry);
            }
            None => {
                if st.pairs.len() >= PAIR_CACHE {
                    st.pairs.remove(0);
                }
                let dev = DevPairs::new(&st.gpu, pairs, dims.n_in, &plan)?;
                st.pairs.push((key, dev));
            }
        }
        // Workspace for this plan (a grads-capable one serves evaluation too).
        match st
            .workspaces
            .iter()
            .position(|(g, ws)| ws.plan == plan && (*g || !want_grads))
        {
            Some(i) => {
                let entry = st.workspaces.remove(i);
                st.workspaces.push(entry);
            }
            None => {
                if st.workspaces.len() >= PAIR_CACHE {
                    st.workspaces.remove(0);
                }
                let ws = Workspace::new(&st.gpu, dims, plan, want_grads)?;
                st.workspaces.push((want_grads, ws));
            }
        }
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
        let (_, dev_pairs) = st.pairs.last().expect("inserted above");
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
        let stats = (0..dims.batch)
            .map(|k| PassStats {
                loss: raw[3 * k],
                correct: raw[3 * k + 1] as usize,
                count: pairs.len(),
                min_margin: raw[3 * k + 2],
            })
            .collect();
        if let Some(out) = grads {
            out.zero_like(weights);
            let g = st.grads.as_ref().expect("allocated above");
            gpu.download_into(&g.u, bytemuck::cast_slice_mut(&mut out.u))?;
            gpu.download_into(&g.v, bytemuck::cast_slice_mut(&mut out.v))?;
            gpu.download_into(&g.w, bytemuck::cast_slice_mut(&mut out.w))?;
        }
        Ok(stats)
    }
}

impl<F: Real> Backend<F> for CudaBackend {
    fn describe(&self) -> String {
        self.description.clone()
    }

    fn loss_and_grad(
        &self,
        core: CoreSpec,
        weights: &Weights<F>,
        pairs: &PairSet,
        grads: &mut Weights<F>,
    ) -> Result<Vec<PassStats>> {
        self.run(core, weights, pairs, Some(grads))
    }

    fn evaluate(
        &self,
        core: CoreSpec,
        weights: &Weights<F>,
        pairs: &PairSet,
    ) -> Result<Vec<PassStats>> {
        self.run(core, weights, pairs, None)
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
