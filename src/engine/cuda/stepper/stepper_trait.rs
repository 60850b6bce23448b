//! [`CudaStepper`] behind the engine's [`Stepper`] trait: the calls the trainer makes
//! (advance, passes, weights and gradients read back, state saved and restored, a model
//! frozen), over the device buffers and graph the parent module builds.

use super::*;

impl<F: Real> Stepper<F> for CudaStepper<F> {
    fn describe(&self) -> String {
        format!(
            "{} (whole step on the device, CUDA graph)",
            self.gpu.describe()
        )
    }

    fn preferred_batch(&self) -> u64 {
        self.read_every as u64
    }

    fn steps_done(&self) -> u64 {
        self.step
    }

    fn advance(&mut self, n: u64, sink: &mut (dyn FnMut(StepReport) + Send)) -> Result<()> {
        let mut left = n;
        while left > 0 {
            let batch = left.min(self.read_every as u64) as usize;
            let (reports, diverged) = self.run_batch(batch)?;
            reports.into_iter().for_each(&mut *sink);
            if let Some(error) = diverged {
                return Err(error);
            }
            left -= batch as u64;
        }
        Ok(())
    }

    fn passes(&mut self) -> Result<PassesReport> {
        let p = self.param_ptrs();
        enqueue_pass(
            &self.gpu,
            self.core,
            p,
            &self.train_pairs,
            &self.train_ws,
            None,
        )?;
        let train = self.read_stats(&self.train_ws, self.train_len)?;
        let test = match &self.test_dev {
            None => None,
            Some((pairs, ws)) => {
                enqueue_pass(&self.gpu, self.core, p, pairs, ws, None)?;
                Some(self.read_stats(ws, self.test_len)?)
            }
        };
        Ok(PassesReport { train, test })
    }

    fn weights(&mut self) -> Result<&Weights<F>> {
        if self.weights.is_none() {
            let mut u = vec![0f32; self.dims.batch * self.dims.emb_len()];
            let mut w = vec![0f32; self.dims.batch * self.dims.w_len()];
            self.gpu.download_into(&self.params.u, &mut u)?;
            let v = if self.tied {
                u.clone()
            } else {
                let mut v = vec![0f32; u.len()];
                self.gpu.download_into(&self.params.v, &mut v)?;
                v
            };
            self.gpu.download_into(&self.params.w, &mut w)?;
            let mut host = Weights::zeros(&self.spec, self.dims.batch);
            host.u = from_f32(&u);
            host.v = from_f32(&v);
            host.w = from_f32(&w);
            self.weights = Some(host);
        }
        Ok(self.weights.as_ref().expect("filled above"))
    }

    fn gradients(&mut self) -> Result<(Vec<F>, Vec<PassStats>, Vec<f64>)> {
        Err(Error::backend(
            "the device-resident CUDA stepper does not expose parameter gradients; build the \
             trainer with Trainer::on_host to get them from the CUDA backend's passes",
        ))
    }

    fn state(&self) -> Result<TrainerState<F>> {
        let ctl_words = self.read_ctl()?;
        let started = ctl_words[ctl::STEP] > 0;
        let adam = self.recipe.optimizer == OptimizerKind::Adamw && started;
        let ema = self.recipe.grokfast_ema_alpha().is_some() && ctl_words[ctl::EMA_READY] != 0;
        let opt = |on: bool, buf: &CudaSlice<f32>| -> Result<Vec<F>> {
            Ok(if on {
                from_f32(&self.device_to_param_order(&self.gpu.download(buf)?))
            } else {
                Vec::new()
            })
        };
        Ok(TrainerState {
            step: ctl_words[ctl::STEP],
            params: from_f32(&self.device_to_param_order(&self.params_device_order()?)),
            adam_m: opt(adam, &self.adam_m)?,
            adam_v: opt(adam, &self.adam_v)?,
            grokfast_ema: opt(ema, &self.ema)?,
            grokfast_window: self.window_state(&ctl_words)?,
        })
    }

    fn restore(&mut self, state: TrainerState<F>) -> Result<()> {
        self.weights = None;
        // The trainer checked the buffer lengths.
        let n = self.n_params;
        let dev = self.param_order_to_device(&to_f32(&state.params));
        let e = self.dims.batch * self.dims.emb_len();
        self.gpu.upload(&dev[..e], &mut self.params.u)?;
        let rest = if self.tied {
            &dev[e..]
        } else {
            self.gpu.upload(&dev[e..2 * e], &mut self.params.v)?;
            &dev[2 * e..]
        };
        self.gpu.upload(rest, &mut self.params.w)?;
        let adam_on = self.recipe.optimizer == OptimizerKind::Adamw;
        let ema_on = self.recipe.grokfast_ema_alpha().is_some();
        let dev_order = |host: &Vec<F>| {
            if host.is_empty() {
                vec![0.0; n]
            } else {
                self.param_order_to_device(&to_f32(host))
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
        if let Some(window) = self.recipe.grokfast_ma_window() {
            let (ring, len) = ring_from_window(
                &to_f32(&state.grokfast_window),
                window,
                self.dims.batch,
                n,
                0.0,
            );
            let dev: Vec<f32> = ring
                .chunks_exact(n)
                .flat_map(|slot| self.param_order_to_device(slot))
                .collect();
            self.gpu.upload(&dev, &mut self.ma_ring)?;
            words[ctl::MA_LEN] = len as u64;
            words[ctl::MA_HEAD] = (len % window) as u64;
        }
        self.gpu.upload(&words, &mut self.ctl)?;
        self.gpu.sync()?;
        self.step = state.step;
        Ok(())
    }

    fn freeze(&mut self, k: usize) -> Result<()> {
        // The captured graph reads the hypers buffer at every replay, so rewriting it is
        // enough: step_control then computes lr 0 (decay 1, step size 0) for model k.
        self.recipe.models[k].lr = 0.0;
        self.gpu
            .upload(&hyper_words(&self.recipe), &mut self.hypers)?;
        self.gpu.sync()
    }
}
