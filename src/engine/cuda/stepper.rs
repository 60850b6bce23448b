//! [`CudaStepper`]: the whole training step on the device, as one CUDA graph.
//!
//! The step (see kernels/optimizer_update.cu for the order) is captured once and
//! replayed; it never synchronizes with the host. Its metrics go into a ring of
//! `read_every` slots on the device, copied back once every `read_every` steps. The
//! parameters, gradients, optimizer state and step counter live on the device; each
//! model's lr schedule and AdamW's bias corrections are computed there from the step
//! counter and the per-model hyperparameters (uploaded once).
//!
//! Semantics are those of the host stepper (src/train/host.rs, with src/optim.rs and
//! src/regularizer.rs): same initialization (the host draws it and uploads it), same
//! reports, same divergence rule (a non-finite total loss stops training with
//! [`Error::Diverged`] and leaves the last good parameters). It covers f32, unfactored
//! models (tied or not) whose batch shares one split; [`super::CudaBackend`] offers it
//! for exactly those, and the trainer steps on the host over the backend otherwise.

use super::device::{enqueue_pass, DevPairs, DevWeights, Dims, Gpu, Plan, WeightPtrs, Workspace};
use super::params::{ctl, ControlParams, FinalizeParams, UpdateParams};
use crate::engine::stepper::{ring_from_window, window_from_ring, GrokfastFilter, TrainerState};
use crate::engine::stepper::{PassesReport, Recipe, StepReport, Stepper, StepperSetup};
use crate::engine::{CoreSpec, PassStats};
use crate::error::{Error, Result};
use crate::kinds::{OptimizerKind, RegularizerKind};
use crate::model::{ModelSpec, Weights};
use crate::real::Real;
use cudarc::driver::{CudaGraph, CudaSlice, PushKernelArg};
use std::marker::PhantomData;

mod stepper_trait;

/// Steps between two metric read-backs unless the backend is told otherwise
/// ([`super::CudaBackend::with_read_every`]).
pub const DEFAULT_READ_EVERY: usize = 100;

/// Trains a batch of unfactored f32 models that share one split, entirely on a GPU
/// (module docs). `F` is the trainer's element type; it is f32 whenever the backend
/// offers this stepper, and values cross the host boundary unchanged.
pub(crate) struct CudaStepper<F> {
    gpu: Gpu,
    recipe: Recipe,
    core: CoreSpec,
    spec: ModelSpec,
    dims: Dims,
    tied: bool,
    n_params: usize,
    train_len: usize,
    test_len: usize,
    params: DevWeights,
    grads: DevWeights,
    adam_m: CudaSlice<f32>,
    adam_v: CudaSlice<f32>,
    ema: CudaSlice<f32>,
    /// Grokfast-MA window: `window` slots of `n_params` floats in device order (empty
    /// unless the recipe runs the MA filter); its head and length are control words.
    ma_ring: CudaSlice<f32>,
    norms: CudaSlice<f64>,
    ctl: CudaSlice<u64>,
    /// `[B][HYPER_WORDS]` per-model lr, weight decay, regularizer λ, Grokfast λ.
    hypers: CudaSlice<f64>,
    /// `[B][MCTL_WORDS]` per-model lr, decay and step size of the current step.
    model_ctl: CudaSlice<f64>,
    bad: CudaSlice<i32>,
    ring: CudaSlice<f64>,
    ring_lr: CudaSlice<f64>,
    milestones: CudaSlice<u64>,
    train_pairs: DevPairs,
    train_ws: Workspace,
    test_dev: Option<(DevPairs, Workspace)>,
    graph: Option<CudaGraph>,
    read_every: usize,
    /// Steps taken (host mirror of the device counter, exact after every read-back).
    step: u64,
    /// Host copy of the effective weights, valid until the next step or restore.
    weights: Option<Weights<F>>,
    _element: PhantomData<F>,
}

/// The kernels' code of a per-neuron regularizer; None for L1 (per entry), which the
/// resident step does not run ([`CudaStepper::covers`] declines it: the host steps).
fn reg_code(kind: RegularizerKind) -> Option<i32> {
    match kind {
        RegularizerKind::None => Some(0),
        RegularizerKind::L2 => Some(1),
        RegularizerKind::L23 => Some(2),
        RegularizerKind::L2k => Some(3),
        RegularizerKind::L1 => None,
    }
}

fn to_f32<F: Real>(xs: &[F]) -> Vec<f32> {
    xs.iter().map(|x| x.to_f32().unwrap_or(f32::NAN)).collect()
}

fn from_f32<F: Real>(xs: &[f32]) -> Vec<F> {
    xs.iter().map(|&x| F::of(x as f64)).collect()
}

impl<F: Real> CudaStepper<F> {
    /// Whether this stepper covers `setup`: f32, unfactored, token (not dense) inputs, a
    /// per-neuron regularizer (not L1), one split for the batch.
    pub(crate) fn covers(setup: &StepperSetup<F>) -> bool {
        // Multi-head pair sets step on the host: the stepper's on-device metrics keep
        // one loss and accuracy per model, not per head.
        F::ELEMENT == crate::kinds::Dtype::F32
            && setup.params.spec.embed_dim.is_none()
            && !setup.params.spec.dense
            && reg_code(setup.recipe.regularizer).is_some()
            && setup.groups.len() == 1
            && setup.groups[0].train.heads.is_none()
    }

    /// Uploads `setup` to `gpu` (the caller checked [`CudaStepper::covers`]).
    pub(crate) fn new(
        gpu: Gpu,
        setup: &StepperSetup<F>,
        read_every: usize,
    ) -> Result<CudaStepper<F>> {
        let spec = setup.params.spec.clone();
        let group = &setup.groups[0];
        let (train, test) = (&group.train, &group.test);
        let eff = setup.params.effective();
        let dims = Dims {
            batch: setup.params.batch,
            n_in: spec.n_in,
            n_out: spec.n_out,
            m: spec.width,
        };
        let tied = spec.tied;
        let b = dims.batch;
        let n_params = setup.params.data.len();
        let mut params = DevWeights {
            u: gpu.alloc(b * dims.emb_len())?,
            v: gpu.alloc(if tied { 0 } else { b * dims.emb_len() })?,
            w: gpu.alloc(b * dims.w_len())?,
        };
        gpu.upload(&to_f32(&eff.u), &mut params.u)?;
        if !tied {
            gpu.upload(&to_f32(&eff.v), &mut params.v)?;
        }
        gpu.upload(&to_f32(&eff.w), &mut params.w)?;
        let recipe = setup.recipe.clone();
        let adam_len = if recipe.optimizer == OptimizerKind::Adamw {
            n_params
        } else {
            0
        };
        let ema_len = if recipe.grokfast_ema_alpha().is_some() {
            n_params
        } else {
            0
        };
        let ma_len = recipe.grokfast_ma_window().unwrap_or(0) * n_params;
        let mut milestones = gpu.alloc::<u64>(recipe.lr_milestones.len())?;
        if !recipe.lr_milestones.is_empty() {
            gpu.upload(&recipe.lr_milestones, &mut milestones)?;
        }
        let host_hypers = hyper_words(&recipe);
        debug_assert_eq!(host_hypers.len(), b * ctl::HYPER_WORDS);
        let mut hypers = gpu.alloc::<f64>(host_hypers.len())?;
        gpu.upload(&host_hypers, &mut hypers)?;
        let plan = Plan::new(&gpu, dims, train.len());
        let train_pairs = DevPairs::new(&gpu, train, dims.n_in, &plan)?;
        let train_ws = Workspace::new(&gpu, dims, plan, true, 0, false)?;
        let test_dev = if test.is_empty() {
            None
        } else {
            let plan = Plan::new(&gpu, dims, test.len());
            Some((
                DevPairs::new(&gpu, test, dims.n_in, &plan)?,
                Workspace::new(&gpu, dims, plan, false, 0, false)?,
            ))
        };
        let mut stepper = CudaStepper {
            grads: DevWeights::zeros(&gpu, dims)?,
            adam_m: gpu.alloc(adam_len)?,
            adam_v: gpu.alloc(adam_len)?,
            ema: gpu.alloc(ema_len)?,
            ma_ring: gpu.alloc(ma_len)?,
            norms: gpu.alloc(b * dims.m)?,
            ctl: gpu.alloc(ctl::WORDS)?,
            model_ctl: gpu.alloc(b * ctl::MCTL_WORDS)?,
            hypers,
            bad: gpu.alloc(b)?,
            ring: gpu.alloc(0)?,
            ring_lr: gpu.alloc(0)?,
            milestones,
            train_pairs,
            train_ws,
            test_dev,
            graph: None,
            read_every: 0,
            step: 0,
            core: recipe.core,
            recipe,
            train_len: train.len(),
            test_len: test.len(),
            spec,
            dims,
            tied,
            n_params,
            params,
            gpu,
            weights: None,
            _element: PhantomData,
        };
        stepper.set_read_every(read_every)?;
        Ok(stepper)
    }

    /// Steps between metric read-backs (the size of the device metrics ring).
    fn set_read_every(&mut self, n: usize) -> Result<()> {
        if n == 0 {
            return Err(Error::config("read_every", 0, "must be at least 1"));
        }
        self.read_every = n;
        self.ring = self.gpu.alloc(n * self.dims.batch * 4)?;
        self.ring_lr = self.gpu.alloc(n * self.dims.batch)?;
        self.graph = None; // it captured the old ring's address
        Ok(())
    }

    fn param_ptrs(&self) -> WeightPtrs {
        let u = self.gpu.ptr(&self.params.u);
        WeightPtrs {
            u,
            v: if self.tied {
                u
            } else {
                self.gpu.ptr(&self.params.v)
            },
            w: self.gpu.ptr(&self.params.w),
        }
    }

    /// Enqueues one whole training step (what the graph holds).
    fn enqueue_step(&self) -> Result<()> {
        let gpu = &self.gpu;
        let d = self.dims;
        let b = d.batch as u32;
        let p = self.param_ptrs();
        let g = WeightPtrs {
            u: gpu.ptr(&self.grads.u),
            v: gpu.ptr(&self.grads.v),
            w: gpu.ptr(&self.grads.w),
        };
        enqueue_pass(
            gpu,
            self.core,
            p,
            &self.train_pairs,
            &self.train_ws,
            Some(g),
        )?;
        let norms = gpu.ptr(&self.norms);
        let (emb_stride, w_stride) = (d.emb_len() as i64, d.w_len() as i64);
        let (n_in, n_out, m) = (d.n_in as i32, d.n_out as i32, d.m as i32);
        let mut lb = gpu.builder("neuron_norms");
        lb.arg(&p.u)
            .arg(&p.v)
            .arg(&p.w)
            .arg(&emb_stride)
            .arg(&w_stride)
            .arg(&n_in)
            .arg(&n_out)
            .arg(&m)
            .arg(&norms);
        gpu.finish(
            "neuron_norms",
            lb,
            (d.m.div_ceil(32) as u32, b, 1),
            (32, 8, 1),
        )?;
        let r = &self.recipe;
        let reg = reg_code(r.regularizer).unwrap_or(0);
        let hypers = gpu.ptr(&self.hypers);
        let model_ctl = gpu.ptr(&self.model_ctl);
        let ctl_ptr = gpu.ptr(&self.ctl);
        let bad = gpu.ptr(&self.bad);
        gpu.launch_struct(
            "finalize_models",
            (b, 1, 1),
            (256, 1, 1),
            &FinalizeParams {
                stats: gpu.ptr(&self.train_ws.stats),
                norms,
                ctl: ctl_ptr,
                ring: gpu.ptr(&self.ring),
                bad,
                hypers,
                reg_q: r.reg_q,
                batch: d.batch as i32,
                m,
                ring_len: self.read_every as i32,
                reg,
            },
        )?;
        gpu.launch_struct(
            "step_control",
            (1, 1, 1),
            (32, 1, 1),
            &ControlParams {
                ctl: ctl_ptr,
                bad,
                milestones: gpu.ptr(&self.milestones),
                ring_lr: gpu.ptr(&self.ring_lr),
                hypers,
                model_ctl,
                lr_factor: r.lr_factor,
                beta1: r.beta1,
                beta2: r.beta2,
                warmup_steps: r.warmup_steps as f64,
                batch: d.batch as i32,
                n_milestones: r.lr_milestones.len() as i32,
                ring_len: self.read_every as i32,
                pad0: 0,
            },
        )?;
        let emb_len = d.batch * d.emb_len();
        let w_len = d.batch * d.w_len();
        let (grokfast, alpha, ma_window, ma_warmup) = match r.grokfast {
            _ if !r.uses_grokfast() => (0, 0.0, 0, 0),
            GrokfastFilter::Ema { alpha } => (1, alpha, 0, 0),
            GrokfastFilter::Ma { window, warmup } => (2, 0.0, window as i32, warmup as i32),
        };
        let longest = emb_len.max(w_len);
        let grid_x = longest.div_ceil(256).min(8 * self.gpu.sms).max(1) as u32;
        gpu.launch_struct(
            "update_params",
            (grid_x, 3, 1),
            (256, 1, 1),
            &UpdateParams {
                u: p.u,
                v: p.v,
                w: p.w,
                du: g.u,
                dv: g.v,
                dw: g.w,
                adam_m: gpu.ptr(&self.adam_m),
                adam_v: gpu.ptr(&self.adam_v),
                ema: gpu.ptr(&self.ema),
                ma_ring: gpu.ptr(&self.ma_ring),
                norms,
                ctl: ctl_ptr,
                hypers,
                model_ctl,
                emb_len: emb_len as i64,
                w_len: w_len as i64,
                ma_stride: self.n_params as i64,
                reg_q: r.reg_q,
                n_in,
                n_out,
                m,
                tied: self.tied as i32,
                kind: match r.optimizer {
                    OptimizerKind::Gd => 0,
                    OptimizerKind::Adamw => 1,
                },
                reg,
                beta1: r.beta1 as f32,
                beta2: r.beta2 as f32,
                one_minus_beta1: (1.0 - r.beta1) as f32,
                one_minus_beta2: (1.0 - r.beta2) as f32,
                eps: r.eps as f32,
                ga_alpha: alpha as f32,
                one_minus_ga_alpha: (1.0 - alpha) as f32,
                grokfast,
                ma_window,
                ma_warmup,
                pad0: 0,
            },
        )?;
        let mut ab = gpu.builder("advance_step");
        ab.arg(&ctl_ptr).arg(&ma_window);
        gpu.finish("advance_step", ab, (1, 1, 1), (1, 1, 1))
    }

    /// Captures the step into a CUDA graph (once; again after `set_read_every`).
    fn ensure_graph(&mut self) -> Result<()> {
        if self.graph.is_some() || self.gpu.sync_each {
            return Ok(());
        }
        use cudarc::driver::sys::{CUgraphInstantiate_flags, CUstreamCaptureMode};
        let stream = self.gpu.stream.clone();
        stream
            .begin_capture(CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_THREAD_LOCAL)
            .map_err(super::device::driver_err("begin graph capture"))?;
        let enqueued = self.enqueue_step();
        let graph = stream.end_capture(CUgraphInstantiate_flags(0));
        enqueued?;
        let graph = graph
            .map_err(super::device::driver_err("end graph capture"))?
            .ok_or_else(|| Error::backend("CUDA graph capture produced no graph"))?;
        graph
            .upload()
            .map_err(super::device::driver_err("graph upload"))?;
        self.graph = Some(graph);
        Ok(())
    }

    fn launch_step(&self) -> Result<()> {
        match &self.graph {
            Some(g) => g
                .launch()
                .map_err(super::device::driver_err("graph launch")),
            None => self.enqueue_step(),
        }
    }

    fn read_ctl(&self) -> Result<Vec<u64>> {
        self.gpu.download(&self.ctl)
    }

    /// `n <= read_every` steps, then one read-back: the reports of the steps taken, and
    /// the divergence error when one of them (the step after the last report) diverged.
    fn run_batch(&mut self, n: usize) -> Result<(Vec<StepReport>, Option<Error>)> {
        debug_assert!(n <= self.read_every);
        self.weights = None;
        self.ensure_graph()?;
        for _ in 0..n {
            self.launch_step()?;
        }
        let ctl_words = self.read_ctl()?;
        let ring = self.gpu.download(&self.ring)?;
        let ring_lr = self.gpu.download(&self.ring_lr)?;
        let first = self.step;
        let now = ctl_words[ctl::STEP];
        let b = self.dims.batch;
        let train_len = self.train_len;
        let report = |s: u64| {
            let slot = (s % self.read_every as u64) as usize;
            let at = |k: usize, j: usize| ring[(slot * b + k) * 4 + j];
            StepReport {
                step: s,
                lr: ring_lr[slot * b..(slot + 1) * b].to_vec(),
                train: (0..b)
                    .map(|k| PassStats {
                        loss: at(k, 0),
                        correct: at(k, 2) as usize,
                        count: train_len,
                        min_margin: at(k, 3),
                        heads: Vec::new(),
                    })
                    .collect(),
                reg_loss: (0..b).map(|k| at(k, 1)).collect(),
            }
        };
        let reports: Vec<StepReport> = (first..now).map(report).collect();
        self.step = now;
        let diverged = (ctl_words[ctl::DIVERGED] != 0).then(|| {
            let step = ctl_words[ctl::DIVERGED_STEP];
            let model = ctl_words[ctl::DIVERGED_MODEL] as usize;
            let r = report(step);
            Error::Diverged {
                step,
                model,
                loss: r.train[model].loss + r.reg_loss[model],
            }
        });
        Ok((reports, diverged))
    }

    fn read_stats(&self, ws: &Workspace, n: usize) -> Result<Vec<PassStats>> {
        let raw = self.gpu.download(&ws.stats)?;
        Ok((0..self.dims.batch)
            .map(|k| PassStats {
                loss: raw[3 * k],
                correct: raw[3 * k + 1] as usize,
                count: n,
                min_margin: raw[3 * k + 2],
                heads: Vec::new(),
            })
            .collect())
    }

    /// The Grokfast-MA window in [`TrainerState::grokfast_window`]'s layout (empty
    /// unless the MA filter runs and has taken a step), from the ring and the control
    /// words `ctl_words`.
    fn window_state(&self, ctl_words: &[u64]) -> Result<Vec<F>> {
        let Some(window) = self.recipe.grokfast_ma_window() else {
            return Ok(Vec::new());
        };
        let len = ctl_words[ctl::MA_LEN] as usize;
        if len == 0 {
            return Ok(Vec::new());
        }
        let ring: Vec<f32> = self
            .gpu
            .download(&self.ma_ring)?
            .chunks_exact(self.n_params)
            .flat_map(|slot| self.device_to_param_order(slot))
            .collect();
        let head = ctl_words[ctl::MA_HEAD] as usize;
        Ok(from_f32(&window_from_ring(
            &ring,
            window,
            len,
            head,
            self.dims.batch,
        )))
    }

    /// Device layout [u (B·p·m) | v (B·p·m, untied) | w (B·n_out·m)] → Params order
    /// (per model: u, v, w).
    fn device_to_param_order(&self, dev: &[f32]) -> Vec<f32> {
        let d = self.dims;
        let (e, o, b) = (d.emb_len(), d.w_len(), d.batch);
        let tensors = if self.tied { 1 } else { 2 };
        let mut out = Vec::with_capacity(dev.len());
        for k in 0..b {
            for t in 0..tensors {
                out.extend_from_slice(&dev[t * b * e + k * e..][..e]);
            }
            out.extend_from_slice(&dev[tensors * b * e + k * o..][..o]);
        }
        out
    }

    fn param_order_to_device(&self, host: &[f32]) -> Vec<f32> {
        let d = self.dims;
        let (e, o, b) = (d.emb_len(), d.w_len(), d.batch);
        let tensors = if self.tied { 1 } else { 2 };
        let per_model = tensors * e + o;
        let mut out = vec![0.0; host.len()];
        for k in 0..b {
            let src = &host[k * per_model..(k + 1) * per_model];
            for t in 0..tensors {
                out[t * b * e + k * e..][..e].copy_from_slice(&src[t * e..(t + 1) * e]);
            }
            out[tensors * b * e + k * o..][..o].copy_from_slice(&src[tensors * e..]);
        }
        out
    }

    fn params_device_order(&self) -> Result<Vec<f32>> {
        let mut all = self.gpu.download(&self.params.u)?;
        if !self.tied {
            all.extend(self.gpu.download(&self.params.v)?);
        }
        all.extend(self.gpu.download(&self.params.w)?);
        Ok(all)
    }
}

/// The `[B][HYPER_WORDS]` per-model words of a recipe: lr, weight decay, regularizer λ,
/// Grokfast λ.
fn hyper_words(recipe: &Recipe) -> Vec<f64> {
    recipe
        .models
        .iter()
        .flat_map(|h| [h.lr, h.weight_decay, h.reg_strength, h.grokfast_lambda])
        .collect()
}
