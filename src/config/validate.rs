//! [`RunConfig::validate`]: every value the engine cannot honour, refused with the dotted
//! key, the value and what would be accepted. Kept apart from the config's shape
//! (src/config.rs) because it grows with every key: one place decides what is valid.

use super::*;

fn finite_nonneg(key: &str, x: f64) -> Result<()> {
    if x.is_finite() && x >= 0.0 {
        Ok(())
    } else {
        Err(Error::config(key, x, "must be a finite number >= 0"))
    }
}

impl RunConfig {
    /// Checks the `[per_model]` lists: each empty or `models` long, each value in the
    /// range its scalar key accepts (the error names `per_model.KEY[k]`).
    fn validate_per_model(&self) -> Result<()> {
        for (key, len) in self.per_model.lists() {
            if len != 0 && len != self.models {
                return Err(Error::config(
                    &format!("per_model.{key}"),
                    format!("a list of {len}"),
                    format!(
                        "must hold one value per model (models = {}) or be left out",
                        self.models
                    ),
                ));
            }
        }
        let pm = &self.per_model;
        let positive = |key: &str, list: &[f64]| -> Result<()> {
            for (k, &x) in list.iter().enumerate() {
                if !(x.is_finite() && x > 0.0) {
                    let key = format!("per_model.{key}[{k}]");
                    return Err(Error::config(&key, x, "must be a positive finite number"));
                }
            }
            Ok(())
        };
        let nonneg = |key: &str, list: &[f64]| -> Result<()> {
            for (k, &x) in list.iter().enumerate() {
                finite_nonneg(&format!("per_model.{key}[{k}]"), x)?;
            }
            Ok(())
        };
        nonneg("lr", &pm.lr)?;
        nonneg("weight_decay", &pm.weight_decay)?;
        nonneg("reg_strength", &pm.reg_strength)?;
        nonneg("grokfast_lambda", &pm.grokfast_lambda)?;
        positive("init_scale", &pm.init_scale)?;
        for (k, &f) in pm.train_fraction.iter().enumerate() {
            if !(f > 0.0 && f <= 1.0) {
                let key = format!("per_model.train_fraction[{k}]");
                return Err(Error::config(
                    &key,
                    f,
                    "must be in (0, 1] (1 trains on every pair)",
                ));
            }
        }
        if self.optimizer.kind == OptimizerKind::Gd {
            if let Some((k, wd)) = pm.weight_decay.iter().enumerate().find(|(_, &wd)| wd > 0.0) {
                return Err(Error::config(
                    &format!("per_model.weight_decay[{k}]"),
                    wd,
                    "only AdamW applies decoupled weight decay; with optimizer.kind = \"gd\" use \
                     per_model.reg_strength with train.regularizer = \"l2\" instead",
                ));
            }
        }
        Ok(())
    }

    /// `task.group`: a name [`GroupName`] accepts, without `task.op` or `task.p` (which
    /// would be silently ignored), and an unordered split only for an abelian group.
    fn validate_group(&self) -> Result<()> {
        let Some(name) = self.group_name()? else {
            return Ok(());
        };
        let default = TaskConfig::default();
        let given = self.task.group.as_deref().unwrap_or_default();
        if self.task.op != default.op {
            return Err(Error::config(
                "task.op",
                self.task.op.name(),
                format!("task.group = \"{given}\" is the table; leave task.op out"),
            ));
        }
        if self.task.p != default.p {
            return Err(Error::config(
                "task.p",
                self.task.p,
                format!(
                    "task.group = \"{given}\" fixes the vocabulary (|G| = {}); leave task.p out",
                    name.order()
                ),
            ));
        }
        if self.task.split == SplitKind::Unordered {
            let g = Group::build(&name);
            let n = g.order();
            if (0..n).any(|a| (0..n).any(|b| g.mul(a, b) != g.mul(b, a))) {
                return Err(Error::config(
                    "task.split",
                    self.task.split.name(),
                    format!(
                        "an unordered split keeps (a, b) and (b, a) together, which only \
                         makes sense for a commutative table; {given} is not abelian (use \
                         \"ordered\")"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// `task.heads` and `task.target_mod` (seed 002's table): `heads` is `"primes"`, the
    /// two exclude each other, `task.group`, a `task.op` (the targets are fixed) and an
    /// unordered split (the table is not symmetric in x0, x1); p is a prime ≥ 3 and
    /// `target_mod` a prime below it.
    fn validate_base_p_task(&self) -> Result<()> {
        let t = &self.task;
        let key = match (&t.heads, t.target_mod) {
            (None, None) => return Ok(()),
            (Some(h), Some(q)) => {
                return Err(Error::config(
                    "task.target_mod",
                    q,
                    format!(
                        "task.heads = \"{h}\" trains every target at once; give one of \
                         task.heads and task.target_mod"
                    ),
                ))
            }
            (Some(h), None) => {
                if h != "primes" {
                    return Err(Error::config(
                        "task.heads",
                        h,
                        "the one head layout is \"primes\" (one head per prime q < p, \
                         target (x0 + x1·p) mod q)",
                    ));
                }
                format!("task.heads = \"{h}\"")
            }
            (None, Some(q)) => format!("task.target_mod = {q}"),
        };
        if let Some(g) = &t.group {
            return Err(Error::config(
                "task.group",
                g,
                format!("{key} is a table over x0, x1 < p, not a group's; leave task.group out"),
            ));
        }
        if t.op != TaskConfig::default().op {
            return Err(Error::config(
                "task.op",
                t.op.name(),
                format!("{key} fixes the targets ((x0 + x1·p) mod q); leave task.op out"),
            ));
        }
        if t.split == SplitKind::Unordered {
            return Err(Error::config(
                "task.split",
                t.split.name(),
                format!("{key} is not symmetric in x0, x1: use \"ordered\""),
            ));
        }
        crate::task::check_base_p(t.p, t.target_mod)
    }

    /// `train.reg_q`: 0 (the activation's degree) or a finite q ≥ 1, and only with `l2k`.
    fn validate_reg_q(&self) -> Result<()> {
        let q = self.train.reg_q;
        if q == 0.0 {
            return Ok(());
        }
        if !(q.is_finite() && q >= 1.0) {
            return Err(Error::config(
                "train.reg_q",
                q,
                "must be a finite number >= 1 (below 1 the penalty is not a norm and its \
                 gradient is unbounded at 0), or 0 for the activation's homogeneity degree",
            ));
        }
        if self.train.regularizer != RegularizerKind::L2k {
            return Err(Error::config(
                "train.reg_q",
                q,
                format!(
                    "only the l2k regularizer has an exponent (train.regularizer = \"{}\"); \
                     set train.regularizer = \"l2k\" or leave train.reg_q at 0",
                    self.train.regularizer.name()
                ),
            ));
        }
        Ok(())
    }

    /// `train.early_stop_*`: the patience a multiple of `eval_every` (the rule runs at
    /// the evaluations), the delta finite and ≥ 0 and only with a patience.
    fn validate_early_stop(&self) -> Result<()> {
        let t = &self.train;
        finite_nonneg("train.early_stop_min_delta", t.early_stop_min_delta)?;
        if t.early_stop_patience == 0 {
            if t.early_stop_min_delta != 0.0 {
                return Err(Error::config(
                    "train.early_stop_min_delta",
                    t.early_stop_min_delta,
                    "has no effect without train.early_stop_patience > 0",
                ));
            }
            if t.early_stop_start != 0 {
                return Err(Error::config(
                    "train.early_stop_start",
                    t.early_stop_start,
                    "has no effect without train.early_stop_patience > 0",
                ));
            }
            return Ok(());
        }
        if !t.early_stop_patience.is_multiple_of(t.eval_every) {
            return Err(Error::config(
                "train.early_stop_patience",
                t.early_stop_patience,
                format!(
                    "must be a multiple of train.eval_every = {} (the rule is checked at \
                     the evaluations)",
                    t.eval_every
                ),
            ));
        }
        Ok(())
    }

    /// Checks every value the engine cannot honour. The error is
    /// [`Error::InvalidConfig`] with the dotted TOML key (e.g. `optimizer.lr`), the value
    /// and what would be accepted. Does not check that a CUDA device exists.
    pub fn validate(&self) -> Result<()> {
        if self.models == 0 {
            return Err(Error::config("models", 0, "need at least one model"));
        }
        self.validate_group()?;
        self.validate_base_p_task()?;
        self.validate_bits()?;
        if self.task.p < 2 {
            return Err(Error::config(
                "task.p",
                self.task.p,
                "the modulus must be at least 2",
            ));
        }
        if self.task.p > crate::task::MAX_P {
            return Err(Error::config(
                "task.p",
                self.task.p,
                format!(
                    "the modulus must be at most {} (the p² pair list is held in memory)",
                    crate::task::MAX_P
                ),
            ));
        }
        if self.task.op.needs_prime() && !crate::task::is_prime(self.task.p) {
            return Err(Error::config(
                "task.p",
                self.task.p,
                format!(
                    "op '{}' needs a prime modulus (Z_p must be a field)",
                    self.task.op.name()
                ),
            ));
        }
        if self.task.group.is_none() {
            self.task.split.check_op(self.task.op)?;
        }
        let f = self.task.train_fraction;
        if !(f > 0.0 && f <= 1.0) {
            return Err(Error::config(
                "task.train_fraction",
                f,
                "must be in (0, 1] (1 trains on every pair)",
            ));
        }
        if self.model.width == 0 {
            return Err(Error::config(
                "model.width",
                0,
                "the model needs at least one hidden neuron",
            ));
        }
        if !(self.model.init_scale.is_finite() && self.model.init_scale > 0.0) {
            return Err(Error::config(
                "model.init_scale",
                self.model.init_scale,
                "must be a positive finite number",
            ));
        }
        finite_nonneg("model.init_scale_out", self.model.init_scale_out)?;
        self.model_spec().validate()?;
        if self.model.init == InitKind::FourierSparse {
            crate::model::check_fourier_sparse(&self.model_spec())?;
        }
        finite_nonneg("train.reg_strength", self.train.reg_strength)?;
        self.validate_reg_q()?;
        if self.train.eval_every == 0 {
            return Err(Error::config("train.eval_every", 0, "must be at least 1"));
        }
        self.validate_early_stop()?;
        let o = &self.optimizer;
        if !(o.lr.is_finite() && o.lr >= 0.0) {
            return Err(Error::config(
                "optimizer.lr",
                o.lr,
                "must be a finite number >= 0",
            ));
        }
        if !(o.lr_factor.is_finite() && o.lr_factor > 0.0) {
            return Err(Error::config(
                "optimizer.lr_factor",
                o.lr_factor,
                "must be a positive finite number",
            ));
        }
        for (key, b) in [
            ("optimizer.beta1", o.beta1),
            ("optimizer.beta2", o.beta2),
            ("optimizer.grokfast_alpha", o.grokfast_alpha),
        ] {
            if !(0.0..1.0).contains(&b) {
                return Err(Error::config(key, b, "must be in [0, 1)"));
            }
        }
        if !(o.eps.is_finite() && o.eps > 0.0) {
            return Err(Error::config(
                "optimizer.eps",
                o.eps,
                "must be a positive finite number",
            ));
        }
        finite_nonneg("optimizer.weight_decay", o.weight_decay)?;
        if o.kind == OptimizerKind::Gd && o.weight_decay > 0.0 {
            return Err(Error::config(
                "optimizer.weight_decay",
                o.weight_decay,
                "only AdamW applies decoupled weight decay; with optimizer.kind = \"gd\" use \
                 train.regularizer = \"l2\" and train.reg_strength instead",
            ));
        }
        finite_nonneg("optimizer.grokfast_lambda", o.grokfast_lambda)?;
        if o.grokfast_window == 0 {
            return Err(Error::config(
                "optimizer.grokfast_window",
                0,
                "must be at least 1 (the Grokfast-MA filter averages that many gradients)",
            ));
        }
        self.validate_per_model()
    }
}
