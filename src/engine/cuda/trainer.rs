//! [`CudaTrainer`]: the whole training step on the device, as one CUDA graph.
//!
//! The step (see kernels/optimizer_update.cu for the order) is captured once and
//! replayed; it never synchronizes with the host. Its metrics go into a ring of
//! `read_every` slots on the device, copied back once every `read_every` steps. The
//! parameters, gradients, optimizer state and step counter live on the device; the lr
//! schedule and AdamW's bias corrections are computed there from the step counter.
//!
//! Semantics are those of [`crate::train::Trainer`] with [`crate::optim::Optimizer`] and
//! [`crate::regularizer::Regularizer`]: same initialization (the host draws it and
//! uploads it), same split, same reports, same divergence rule (a non-finite total loss
//! stops training with [`Error::Diverged`] and leaves the last good parameters).
//! Unfactored models only (tied or not); factored embeddings train on the GPU through
//! `Trainer::with_backend(config, Box::new(CudaBackend::new(..)?))`.

use super::device::{enqueue_pass, DevPairs, DevWeights, Dims, Gpu, Plan, WeightPtrs, Workspace};
use super::params::{ctl, ControlParams, FinalizeParams, UpdateParams};
use super::Precision;
use crate::config::RunConfig;
use crate::engine::{CoreSpec, PassStats};
use crate::error::{Error, Result};
use crate::kinds::{Device, Dtype, OptimizerKind, RegularizerKind};
use crate::model::{Activation, Params, Weights};
use crate::task::{Op, PairSet, Split, Task};
use crate::theory;
use crate::train::{Evaluation, StepReport, TrainerState};
use cudarc::driver::{CudaGraph, CudaSlice, PushKernelArg};

/// Steps between two metric read-backs unless [`CudaTrainer::set_read_every`] says otherwise.
pub const DEFAULT_READ_EVERY: usize = 100;

/// Trains a batch of unfactored models of one shape on one task, entirely on a GPU, in
/// f32 (module docs: same semantics as [`crate::train::Trainer`], metrics read back
/// every `read_every` steps).
pub struct CudaTrainer {
    gpu: Gpu,
    config: RunConfig,
    core: CoreSpec,
    dims: Dims,
    tied: bool,
    n_params: usize,
    task: Task,
    train: PairSet,
    test: PairSet,
    params: DevWeights,
    grads: DevWeights,
    adam_m: CudaSlice<f32>,
    adam_v: CudaSlice<f32>,
    ema: CudaSlice<f32>,
    norms: CudaSlice<f64>,
    ctl: CudaSlice<u64>,
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
}

fn reg_code(kind: RegularizerKind, strength: f64) -> i32 {
    match kind {
        _ if strength == 0.0 => 0,
        RegularizerKind::None => 0,
        RegularizerKind::L2 => 1,
        RegularizerKind::L23 => 2,
    }
}

impl CudaTrainer {
    /// A trainer for `config` on the CUDA device its `device` field names (`cuda[:N]`),
    /// with the product precision of its `precision` key (exact fp32 by default).
    pub fn from_config(config: &RunConfig) -> Result<CudaTrainer> {
        match config.device {
            Device::Cuda(n) => CudaTrainer::new(config, n, config.precision),
            Device::Cpu => Err(Error::config(
                "device",
                config.device,
                "CudaTrainer needs device = \"cuda\" or \"cuda:N\"",
            )),
        }
    }

    /// A trainer for `config` on `cuda:device` with the given product precision.
    pub fn new(config: &RunConfig, device: usize, precision: Precision) -> Result<CudaTrainer> {
        config.validate()?;
        if config.dtype != Dtype::F32 {
            return Err(Error::config(
                "dtype",
                config.dtype,
                "the CUDA trainer runs in f32 (set dtype = \"f32\")",
            ));
        }
        if config.model.embed_dim != 0 {
            return Err(Error::config(
                "model.embed_dim",
                config.model.embed_dim,
                "the device-resident CUDA trainer handles unfactored models; train factored \
                 ones with Trainer::with_backend(config, Box::new(CudaBackend::new(..)?))",
            ));
        }
        let gpu = Gpu::new(device, precision)?;
        let task = config.build_task()?;
        let split = Split::new(task.len(), config.task.train_fraction, config.seed)?;
        let train = task.pairs.select(&split.train);
        let test = task.pairs.select(&split.test);
        let spec = config.model_spec();
        let host = Params::<f32>::init(&spec, config.models, config.seed)?;
        let eff = host.effective();
        let dims = Dims {
            batch: config.models,
            n_in: spec.n_in,
            n_out: spec.n_out,
            m: spec.width,
        };
        let tied = spec.tied;
        let b = dims.batch;
        let n_params = b * spec.n_params();
        let mut params = DevWeights {
            u: gpu.alloc(b * dims.emb_len())?,
            v: gpu.alloc(if tied { 0 } else { b * dims.emb_len() })?,
            w: gpu.alloc(b * dims.w_len())?,
        };
        gpu.upload(&eff.u, &mut params.u)?;
        if !tied {
            gpu.upload(&eff.v, &mut params.v)?;
        }
        gpu.upload(&eff.w, &mut params.w)?;
        let opt = &config.optimizer;
        let adam_len = if opt.kind == OptimizerKind::Adamw {
            n_params
        } else {
            0
        };
        let ema_len = if opt.grokfast_lambda > 0.0 {
            n_params
        } else {
            0
        };
        let mut milestones = gpu.alloc::<u64>(opt.lr_milestones.len())?;
        if !opt.lr_milestones.is_empty() {
            gpu.upload(&opt.lr_milestones, &mut milestones)?;
        }
        let plan = Plan::new(&gpu, dims, train.len());
        let train_pairs = DevPairs::new(&gpu, &train, dims.n_in, &plan)?;
        let train_ws = Workspace::new(&gpu, dims, plan, true)?;
        let test_dev = if test.is_empty() {
            None
        } else {
            let plan = Plan::new(&gpu, dims, test.len());
            Some((
                DevPairs::new(&gpu, &test, dims.n_in, &plan)?,
                Workspace::new(&gpu, dims, plan, false)?,
            ))
        };
        let mut trainer = CudaTrainer {
            grads: DevWeights::zeros(&gpu, dims)?,
            adam_m: gpu.alloc(adam_len)?,
            adam_v: gpu.alloc(adam_len)?,
            ema: gpu.alloc(ema_len)?,
            norms: gpu.alloc(b * dims.m)?,
            ctl: gpu.alloc(ctl::WORDS)?,
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
            core: CoreSpec {
                activation: config.model.activation,
                loss: config.train.loss,
            },
            config: config.clone(),
            dims,
            tied,
            n_params,
            task,
            train,
            test,
            params,
            gpu,
        };
        trainer.set_read_every(DEFAULT_READ_EVERY)?;
        Ok(trainer)
    }

    /// Steps between two metric read-backs.
    pub fn read_every(&self) -> usize {
        self.read_every
    }

    /// Steps between metric read-backs (the size of the device metrics ring). Reports
    /// come back in batches of this many steps from [`CudaTrainer::run`].
    pub fn set_read_every(&mut self, n: usize) -> Result<()> {
        if n == 0 {
            return Err(Error::config("read_every", 0, "must be at least 1"));
        }
        self.read_every = n;
        self.ring = self.gpu.alloc(n * self.dims.batch * 4)?;
        self.ring_lr = self.gpu.alloc(n)?;
        self.graph = None; // it captured the old ring's address
        Ok(())
    }

    /// Short description of the device for logs (name, architecture, precision).
    pub fn describe(&self) -> String {
        self.gpu.describe()
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
        let c = &self.config;
        let reg = reg_code(c.train.regularizer, c.train.reg_strength);
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
                reg_lambda: c.train.reg_strength,
                batch: d.batch as i32,
                m,
                ring_len: self.read_every as i32,
                reg,
            },
        )?;
        let o = &c.optimizer;
        gpu.launch_struct(
            "step_control",
            (1, 1, 1),
            (32, 1, 1),
            &ControlParams {
                ctl: ctl_ptr,
                bad,
                milestones: gpu.ptr(&self.milestones),
                ring_lr: gpu.ptr(&self.ring_lr),
                lr: o.lr,
                lr_factor: o.lr_factor,
                beta1: o.beta1,
                beta2: o.beta2,
                weight_decay: if o.kind == OptimizerKind::Adamw {
                    o.weight_decay
                } else {
                    0.0
                },
                batch: d.batch as i32,
                n_milestones: o.lr_milestones.len() as i32,
                ring_len: self.read_every as i32,
                pad0: 0,
            },
        )?;
        let emb_len = d.batch * d.emb_len();
        let w_len = d.batch * d.w_len();
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
                norms,
                ctl: ctl_ptr,
                emb_len: emb_len as i64,
                w_len: w_len as i64,
                reg_lambda: c.train.reg_strength,
                n_in,
                n_out,
                m,
                tied: self.tied as i32,
                kind: match o.kind {
                    OptimizerKind::Gd => 0,
                    OptimizerKind::Adamw => 1,
                },
                reg,
                beta1: o.beta1 as f32,
                beta2: o.beta2 as f32,
                one_minus_beta1: (1.0 - o.beta1) as f32,
                one_minus_beta2: (1.0 - o.beta2) as f32,
                eps: o.eps as f32,
                ga_alpha: o.grokfast_alpha as f32,
                one_minus_ga_alpha: (1.0 - o.grokfast_alpha) as f32,
                ga_lambda: o.grokfast_lambda as f32,
            },
        )?;
        let mut ab = gpu.builder("advance_step");
        ab.arg(&ctl_ptr);
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
            .ok_or_else(|| Error::Backend("CUDA graph capture produced no graph".into()))?;
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

    /// One step, read back at once (one host sync; prefer [`CudaTrainer::run`]).
    pub fn step(&mut self) -> Result<StepReport> {
        let mut r = self.run_batch(1)?;
        Ok(r.pop().expect("one step ran"))
    }

    /// `steps` steps, reading the metrics back every `read_every` steps. Returns every
    /// step's report; on a non-finite loss stops with [`Error::Diverged`] (the steps
    /// before it are done and [`CudaTrainer::steps_done`] counts them, but their reports
    /// are dropped with the error; [`CudaTrainer::run_with`] hands over each completed
    /// read-back batch before the failing one).
    pub fn run(&mut self, steps: u64) -> Result<Vec<StepReport>> {
        let mut reports = Vec::with_capacity(steps as usize);
        let mut left = steps;
        while left > 0 {
            let n = left.min(self.read_every as u64) as usize;
            reports.extend(self.run_batch(n)?);
            left -= n as u64;
        }
        Ok(reports)
    }

    /// Like [`CudaTrainer::run`] but hands each batch of reports to `f` as it arrives.
    pub fn run_with(&mut self, steps: u64, mut f: impl FnMut(&[StepReport])) -> Result<()> {
        let mut left = steps;
        while left > 0 {
            let n = left.min(self.read_every as u64) as usize;
            let batch = self.run_batch(n)?;
            f(&batch);
            left -= n as u64;
        }
        Ok(())
    }

    fn read_ctl(&self) -> Result<Vec<u64>> {
        self.gpu.download(&self.ctl)
    }

    /// n <= read_every steps, then one read-back.
    fn run_batch(&mut self, n: usize) -> Result<Vec<StepReport>> {
        debug_assert!(n <= self.read_every);
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
        let report = |s: u64| {
            let slot = (s % self.read_every as u64) as usize;
            let at = |k: usize, j: usize| ring[(slot * b + k) * 4 + j];
            StepReport {
                step: s,
                lr: vec![ring_lr[slot]; b],
                train: (0..b)
                    .map(|k| PassStats {
                        loss: at(k, 0),
                        correct: at(k, 2) as usize,
                        count: self.train.len(),
                        min_margin: at(k, 3),
                    })
                    .collect(),
                reg_loss: (0..b).map(|k| at(k, 1)).collect(),
            }
        };
        let reports: Vec<StepReport> = (first..now).map(report).collect();
        self.step = now;
        if ctl_words[ctl::DIVERGED] != 0 {
            let step = ctl_words[ctl::DIVERGED_STEP];
            let model = ctl_words[ctl::DIVERGED_MODEL] as usize;
            let r = report(step);
            return Err(Error::Diverged {
                step,
                model,
                loss: r.train[model].loss + r.reg_loss[model],
            });
        }
        Ok(reports)
    }

    /// Loss, accuracy (train and test) and normalized margin of the current parameters.
    pub fn evaluate(&mut self) -> Result<Evaluation> {
        let p = self.param_ptrs();
        let b = self.dims.batch;
        let read = |ws: &Workspace, n: usize| -> Result<Vec<PassStats>> {
            let raw = self.gpu.download(&ws.stats)?;
            Ok((0..b)
                .map(|k| PassStats {
                    loss: raw[3 * k],
                    correct: raw[3 * k + 1] as usize,
                    count: n,
                    min_margin: raw[3 * k + 2],
                })
                .collect())
        };
        enqueue_pass(
            &self.gpu,
            self.core,
            p,
            &self.train_pairs,
            &self.train_ws,
            None,
        )?;
        let train = read(&self.train_ws, self.train.len())?;
        let test = match &self.test_dev {
            None => None,
            Some((pairs, ws)) => {
                enqueue_pass(&self.gpu, self.core, p, pairs, ws, None)?;
                Some(read(ws, self.test.len())?)
            }
        };
        let weights = self.weights()?;
        let margin = train
            .iter()
            .enumerate()
            .map(|(k, s)| {
                theory::normalized_margin(s.min_margin, &weights, k, self.core.activation)
            })
            .collect();
        Ok(Evaluation {
            step: self.step,
            train,
            test,
            margin,
            gamma_star: self.gamma_star(),
        })
    }

    /// γ* when the theory covers this setup: x², addition, untied (as `Trainer`).
    pub fn gamma_star(&self) -> Option<f64> {
        let c = &self.config;
        (c.model.activation == Activation::Square && c.task.op == Op::Add && !c.model.tied)
            .then(|| theory::gamma_star_modular_addition(c.task.p))
    }

    /// Current effective U, V, W (copied from the device).
    pub fn weights(&self) -> Result<Weights<f32>> {
        let spec = self.config.model_spec();
        let mut w = Weights::zeros(&spec, self.dims.batch);
        self.gpu.download_into(&self.params.u, &mut w.u)?;
        if self.tied {
            w.v.copy_from_slice(&w.u);
        } else {
            self.gpu.download_into(&self.params.v, &mut w.v)?;
        }
        self.gpu.download_into(&self.params.w, &mut w.w)?;
        Ok(w)
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

    /// Snapshot of everything that evolves during training (the host `TrainerState`).
    pub fn state(&self) -> Result<TrainerState<f32>> {
        let ctl_words = self.read_ctl()?;
        let started = ctl_words[ctl::STEP] > 0;
        let adam = self.config.optimizer.kind == OptimizerKind::Adamw && started;
        let ema = self.config.optimizer.grokfast_lambda > 0.0 && ctl_words[ctl::EMA_READY] != 0;
        let opt = |on: bool, buf: &CudaSlice<f32>| -> Result<Vec<f32>> {
            Ok(if on {
                self.device_to_param_order(&self.gpu.download(buf)?)
            } else {
                Vec::new()
            })
        };
        Ok(TrainerState {
            step: ctl_words[ctl::STEP],
            params: self.device_to_param_order(&self.params_device_order()?),
            adam_m: opt(adam, &self.adam_m)?,
            adam_v: opt(adam, &self.adam_v)?,
            grokfast_ema: opt(ema, &self.ema)?,
        })
    }

    /// Continues from a snapshot of a trainer (CPU or CUDA) with the same config.
    pub fn restore(&mut self, state: TrainerState<f32>) -> Result<()> {
        let n = self.n_params;
        let ok = |v: &Vec<f32>| v.is_empty() || v.len() == n;
        if state.params.len() != n
            || !ok(&state.adam_m)
            || !ok(&state.adam_v)
            || !ok(&state.grokfast_ema)
        {
            return Err(Error::Shape {
                what: "trainer state".into(),
                expected: format!("{n} parameters"),
                got: format!("{} parameters", state.params.len()),
            });
        }
        let dev = self.param_order_to_device(&state.params);
        let e = self.dims.batch * self.dims.emb_len();
        self.gpu.upload(&dev[..e], &mut self.params.u)?;
        let rest = if self.tied {
            &dev[e..]
        } else {
            self.gpu.upload(&dev[e..2 * e], &mut self.params.v)?;
            &dev[2 * e..]
        };
        self.gpu.upload(rest, &mut self.params.w)?;
        let adam_on = self.config.optimizer.kind == OptimizerKind::Adamw;
        let ema_on = self.config.optimizer.grokfast_lambda > 0.0;
        let dev_order = |host: &Vec<f32>| {
            if host.is_empty() {
                vec![0.0; n]
            } else {
                self.param_order_to_device(host)
            }
        };
        let (m, v, ema) = (
            dev_order(&state.adam_m),
            dev_order(&state.adam_v),
            dev_order(&state.grokfast_ema),
        );
        if adam_on {
            self.gpu.upload(&m, &mut self.adam_m)?;
            self.gpu.upload(&v, &mut self.adam_v)?;
        }
        if ema_on {
            self.gpu.upload(&ema, &mut self.ema)?;
        }
        let mut words = vec![0u64; ctl::WORDS];
        words[ctl::STEP] = state.step;
        words[ctl::EMA_READY] = (!state.grokfast_ema.is_empty()) as u64;
        self.gpu.upload(&words, &mut self.ctl)?;
        self.gpu.sync()?;
        self.step = state.step;
        Ok(())
    }

    /// (free, total) bytes of device memory as the driver reports them now.
    pub fn device_memory(&self) -> Result<(usize, usize)> {
        self.gpu
            .stream
            .context()
            .mem_get_info()
            .map_err(super::device::driver_err("cuMemGetInfo"))
    }

    /// Waits for everything queued so far (for timing).
    pub fn synchronize(&self) -> Result<()> {
        self.gpu.sync()
    }

    /// Steps taken so far.
    pub fn steps_done(&self) -> u64 {
        self.step
    }
    /// The config the trainer was built from.
    pub fn config(&self) -> &RunConfig {
        &self.config
    }
    /// The whole operation table (train and test pairs).
    pub fn task(&self) -> &Task {
        &self.task
    }
    /// The pairs trained on (the same split as [`crate::train::Trainer`]).
    pub fn train_pairs(&self) -> &PairSet {
        &self.train
    }
    /// The held-out pairs; empty when `train_fraction = 1`.
    pub fn test_pairs(&self) -> &PairSet {
        &self.test
    }
}
