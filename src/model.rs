//! The two-layer MLP: its shape, activation, parameters and their initialization.
//!
//! (Over 600 lines: spec, parameters, effective weights and the chain rule back from them
//! are one data layout; split apart, each half would restate the other's layout rules.)
//!
//! Neuron `i` owns `u_i, v_i ∈ R^n_in` and `w_i ∈ R^n_out`;
//! `h_i(a,b) = σ(u_i[a] + v_i[b])` and `f_c(a,b) = Σ_i w_i[c] h_i(a,b)`.
//!
//! Internally the embeddings are stored token-major (`n_in × m`, one row per input
//! token) because the engine gathers whole rows `u[a]`, `v[b]` for every pair; the public
//! accessors hand them out in the paper's `m × n_in` orientation.

use crate::error::{Error, Result};
use crate::real::Real;
use ndarray::Array2;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

mod fourier_sparse;

/// The hidden nonlinearity σ, applied to `u_i[a] + v_i[b]`.
///
/// Written in configs as `"square"` (also `"x2"`, `"x^2"`), `"relu"` or `"powK"`
/// (also `"x^K"`), K ≥ 1; `pow2` parses as [`Activation::Square`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// σ(x) = x² (the case the margin theory solves exactly).
    Square,
    /// σ(x) = max(x, 0).
    Relu,
    /// σ(x) = x^k, k ≥ 1.
    Pow(u32),
}

impl Activation {
    /// Degree of homogeneity of the whole network in its parameters (σ of degree d
    /// makes f (d+1)-homogeneous); used to normalize margins.
    pub fn homogeneity(self) -> f64 {
        match self {
            Activation::Square => 3.0,
            Activation::Relu => 2.0,
            Activation::Pow(k) => k as f64 + 1.0,
        }
    }
}

impl std::fmt::Display for Activation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Activation::Square => write!(f, "square"),
            Activation::Relu => write!(f, "relu"),
            Activation::Pow(k) => write!(f, "pow{k}"),
        }
    }
}

impl std::str::FromStr for Activation {
    type Err = Error;
    fn from_str(s: &str) -> Result<Activation> {
        let bad = || {
            Error::config(
                "activation",
                s,
                "expected square, relu or powK with K >= 1 (e.g. pow3)",
            )
        };
        match s {
            "square" | "x2" | "x^2" => Ok(Activation::Square),
            "relu" => Ok(Activation::Relu),
            _ => {
                let k = s
                    .strip_prefix("pow")
                    .or_else(|| s.strip_prefix("x^"))
                    .ok_or_else(bad)?
                    .parse::<u32>()
                    .map_err(|_| bad())?;
                match k {
                    0 => Err(bad()),
                    2 => Ok(Activation::Square),
                    k => Ok(Activation::Pow(k)),
                }
            }
        }
    }
}

impl Serialize for Activation {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Activation {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Everything that fixes a model's shape (but not its values), plus the scale of its
/// initialization. Usually built by [`crate::config::RunConfig::model_spec`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// Input vocabulary size (p for Z_p).
    pub n_in: usize,
    /// Number of output classes.
    pub n_out: usize,
    /// Hidden width m.
    pub width: usize,
    /// The hidden nonlinearity σ.
    pub activation: Activation,
    /// Tied embeddings: v_i = u_i.
    pub tied: bool,
    /// Factored embeddings of dimension d (seed 003's model): U = (E·P_u)ᵀ, V = (E·P_v)ᵀ
    /// (P_v = P_u when tied) and W = E·P_out, E being `n_in × d`. Needs n_out = n_in.
    pub embed_dim: Option<usize>,
    /// Standard deviation of the Gaussian initialization of U, V, W.
    pub init_scale: f64,
}

impl ModelSpec {
    /// Checks that the spec describes a model that can exist: width ≥ 1, `pow` ≥ 1, a
    /// positive finite init scale, and for factored embeddings d ≥ 1 and
    /// `n_out = n_in`. Errors are [`Error::InvalidConfig`] keyed by the field name.
    pub fn validate(&self) -> Result<()> {
        if self.width == 0 {
            return Err(Error::config(
                "width",
                0,
                "the model needs at least one hidden neuron",
            ));
        }
        if let Activation::Pow(0) = self.activation {
            return Err(Error::config(
                "activation",
                "pow0",
                "the power must be at least 1",
            ));
        }
        if !(self.init_scale.is_finite() && self.init_scale > 0.0) {
            return Err(Error::config(
                "init_scale",
                self.init_scale,
                "must be a positive finite number",
            ));
        }
        if let Some(d) = self.embed_dim {
            if d == 0 {
                return Err(Error::config(
                    "embed_dim",
                    d,
                    "the factored embedding needs d >= 1",
                ));
            }
            if self.n_out != self.n_in {
                return Err(Error::config(
                    "embed_dim",
                    d,
                    format!(
                        "factored embeddings share E between input and output, which needs n_out = n_in (got {} and {})",
                        self.n_out, self.n_in
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The named parameter tensors of one model, in storage order, with their shapes
    /// (row-major, storage orientation: `u`, `v` are `n_in × m`, `w` is `n_out × m`).
    ///
    /// Unfactored: `u`, `v` (absent when tied), `w`. Factored: `embed` (`n_in × d`),
    /// `proj_u`, `proj_v` (absent when tied), `proj_out` (each `d × m`). This is the
    /// layout of [`Params::data`] for each model.
    pub fn tensors(&self) -> Vec<(&'static str, [usize; 2])> {
        let (p, m, c) = (self.n_in, self.width, self.n_out);
        match self.embed_dim {
            None => {
                let mut t = vec![("u", [p, m])];
                if !self.tied {
                    t.push(("v", [p, m]));
                }
                t.push(("w", [c, m]));
                t
            }
            Some(d) => {
                let mut t = vec![("embed", [p, d]), ("proj_u", [d, m])];
                if !self.tied {
                    t.push(("proj_v", [d, m]));
                }
                t.push(("proj_out", [d, m]));
                t
            }
        }
    }

    /// Number of trainable scalars of one model.
    pub fn n_params(&self) -> usize {
        self.tensors().iter().map(|(_, s)| s[0] * s[1]).sum()
    }
}

/// Whether `spec` can be initialized [`InitKind::FourierSparse`] (an error naming
/// `model.init` otherwise).
pub fn check_fourier_sparse(spec: &ModelSpec) -> Result<()> {
    fourier_sparse::check(spec)
}

/// How initial weights are drawn (`model.init`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum InitKind {
    /// Independent Gaussians of std `init_scale` (the default).
    #[default]
    #[serde(rename = "gaussian")]
    Gaussian,
    /// Every neuron one cosine of amplitude `init_scale` at a frequency of its own
    /// (frequencies balanced over the neurons, phases uniform): the peer's
    /// "single-freq" initialization (`fourier_sparse` module docs say exactly what it
    /// does). Unfactored models with p ≥ 3 only.
    #[serde(rename = "fourier-sparse")]
    FourierSparse,
}

/// Where one model's initial weights come from: the seed and stream of its generator
/// and the standard deviation of its Gaussian draw.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ModelInit {
    /// Seed of the ChaCha8 generator.
    pub seed: u64,
    /// Stream of that generator the model draws from.
    pub stream: u64,
    /// Standard deviation of U, V, W (of their products when factored).
    pub init_scale: f64,
    /// Standard deviation of the output weights' own draw, when it differs from the
    /// rule above: of `W` (unfactored) or of the factor `P_out` (factored, whose default
    /// is 1/√d so that `W = E·P_out` has std `init_scale`). Why: seed 003's colab
    /// initializes its output projection as a Linear layer on the m hidden units
    /// (std 1/√m), not from the embedding side. `None` keeps the rule.
    pub init_scale_out: Option<f64>,
    /// Gaussian or Fourier-sparse ([`InitKind`]); with Fourier-sparse `init_scale` (and
    /// `init_scale_out` for W when given) is the amplitude of each neuron's cosine.
    pub kind: InitKind,
}

/// The trainable parameters of a batch of `batch` models with one spec, stored as one
/// flat vector (model-major), which is what the optimizers update.
///
/// For a factored model these are the factors, not `U`, `V`, `W`; [`Params::effective`]
/// turns them into the weights the engine computes with.
#[derive(Clone, Debug, PartialEq)]
pub struct Params<F> {
    /// The shape every model of the batch shares.
    pub spec: ModelSpec,
    /// Number of models B.
    pub batch: usize,
    /// `batch × spec.n_params()` values: model `k` occupies
    /// `k·n_params .. (k+1)·n_params`, its tensors laid out in [`ModelSpec::tensors`]
    /// order, each row-major in storage orientation.
    pub data: Vec<F>,
}

impl<F: Real> Params<F> {
    /// Seeded Gaussian initialization. Model `k` draws from stream `k` of a ChaCha8
    /// generator seeded with `seed`, so a model's initial weights do not depend on the
    /// batch it is trained in.
    pub fn init(spec: &ModelSpec, batch: usize, seed: u64) -> Result<Params<F>> {
        let inits: Vec<ModelInit> = (0..batch as u64)
            .map(|stream| ModelInit {
                seed,
                stream,
                init_scale: spec.init_scale,
                init_scale_out: None,
                kind: InitKind::Gaussian,
            })
            .collect();
        Params::init_each(spec, &inits)
    }

    /// Seeded Gaussian initialization with each model's own seed, stream and scale
    /// (what a batch of models with per-model settings starts from): model `k` is drawn
    /// exactly as `Params::init` draws a model with `inits[k]`'s seed, stream and scale,
    /// so it does not depend on the other models of the batch.
    pub fn init_each(spec: &ModelSpec, inits: &[ModelInit]) -> Result<Params<F>> {
        spec.validate()?;
        if inits.is_empty() {
            return Err(Error::config(
                "models",
                0,
                "the batch needs at least one model",
            ));
        }
        let positive = |x: f64| x.is_finite() && x > 0.0;
        if let Some((k, bad)) = inits
            .iter()
            .enumerate()
            .find(|(_, i)| !positive(i.init_scale))
        {
            return Err(Error::config(
                &format!("init_scale of model {k}"),
                bad.init_scale,
                "must be a positive finite number",
            ));
        }
        if let Some((k, bad)) = inits
            .iter()
            .enumerate()
            .find_map(|(k, i)| i.init_scale_out.filter(|&x| !positive(x)).map(|x| (k, x)))
        {
            return Err(Error::config(
                &format!("init_scale_out of model {k}"),
                bad,
                "must be a positive finite number",
            ));
        }
        if inits.iter().any(|i| i.kind == InitKind::FourierSparse) {
            check_fourier_sparse(spec)?;
        }
        let batch = inits.len();
        let n = spec.n_params();
        let mut data = Vec::with_capacity(n * batch);
        for init in inits {
            let mut rng = ChaCha8Rng::seed_from_u64(init.seed);
            rng.set_stream(init.stream);
            if init.kind == InitKind::FourierSparse {
                let out = init.init_scale_out.unwrap_or(init.init_scale);
                fourier_sparse::draw(spec, init.init_scale, out, &mut rng, &mut data);
                continue;
            }
            for (name, shape) in spec.tensors() {
                // Factors are scaled so that the product E·P has std init_scale.
                let std = match (name, init.init_scale_out) {
                    ("w" | "proj_out", Some(out)) => out,
                    ("proj_u" | "proj_v" | "proj_out", _) => 1.0 / (shape[0] as f64).sqrt(),
                    _ => init.init_scale,
                };
                for _ in 0..shape[0] * shape[1] {
                    let z: f64 = StandardNormal.sample(&mut rng);
                    data.push(F::of(std * z));
                }
            }
        }
        Ok(Params {
            spec: spec.clone(),
            batch,
            data,
        })
    }

    /// Parameters of model `k` (its `n_params` values, in [`ModelSpec::tensors`] order).
    /// Panics if `k ≥ batch`.
    pub fn model(&self, k: usize) -> &[F] {
        let n = self.spec.n_params();
        &self.data[k * n..(k + 1) * n]
    }

    /// A named tensor of model `k` (a name from [`ModelSpec::tensors`]) as an array in
    /// storage orientation, e.g. `u` as `n_in × m`; `None` if the model has no tensor of
    /// that name (`v` when tied, `u` when factored).
    pub fn tensor(&self, k: usize, name: &str) -> Option<Array2<F>> {
        let mut offset = 0;
        for (t, shape) in self.spec.tensors() {
            let len = shape[0] * shape[1];
            if t == name {
                let slice = &self.model(k)[offset..offset + len];
                return Some(
                    Array2::from_shape_vec((shape[0], shape[1]), slice.to_vec())
                        .expect("shape matches"),
                );
            }
            offset += len;
        }
        None
    }

    /// The effective `U`, `V`, `W` of every model (products of the factors when factored).
    pub fn effective(&self) -> Weights<F> {
        let mut weights = Weights::zeros(&self.spec, self.batch);
        self.effective_into(&mut weights);
        weights
    }

    /// Like [`Params::effective`], reusing `out`'s storage.
    pub fn effective_into(&self, out: &mut Weights<F>) {
        let spec = &self.spec;
        let (p, m, c) = (spec.n_in, spec.width, spec.n_out);
        for k in 0..self.batch {
            let params = self.model(k);
            let (u, v, w) = out.model_mut(k);
            match spec.embed_dim {
                None => {
                    u.copy_from_slice(&params[..p * m]);
                    let rest = &params[p * m..];
                    let rest = if spec.tied {
                        v.copy_from_slice(u);
                        rest
                    } else {
                        v.copy_from_slice(&rest[..p * m]);
                        &rest[p * m..]
                    };
                    w.copy_from_slice(&rest[..c * m]);
                }
                Some(d) => {
                    let embed = &params[..p * d];
                    let proj_u = &params[p * d..p * d + d * m];
                    let mut next = p * d + d * m;
                    let proj_v = if spec.tied {
                        proj_u
                    } else {
                        next += d * m;
                        &params[next - d * m..next]
                    };
                    let proj_out = &params[next..next + d * m];
                    matmul(embed, proj_u, u, p, d, m);
                    matmul(embed, proj_v, v, p, d, m);
                    matmul(embed, proj_out, w, c, d, m);
                }
            }
        }
    }

    /// Maps gradients with respect to the effective weights onto the parameters
    /// (sums the two embedding gradients when tied, chains through the factors).
    /// `out` has the layout of [`Params::data`] and is overwritten.
    pub fn chain_grads(&self, grads: &Weights<F>, out: &mut [F]) {
        let spec = &self.spec;
        let (p, m, c) = (spec.n_in, spec.width, spec.n_out);
        let n = spec.n_params();
        for k in 0..self.batch {
            let (gu, gv, gw) = grads.model(k);
            let params = self.model(k);
            let out = &mut out[k * n..(k + 1) * n];
            match spec.embed_dim {
                None => {
                    let (o_u, rest) = out.split_at_mut(p * m);
                    for ((o, a), b) in o_u.iter_mut().zip(gu).zip(gv) {
                        *o = if spec.tied { *a + *b } else { *a };
                    }
                    let rest = if spec.tied {
                        rest
                    } else {
                        rest[..p * m].copy_from_slice(gv);
                        &mut rest[p * m..]
                    };
                    rest[..c * m].copy_from_slice(gw);
                }
                Some(d) => {
                    let embed = &params[..p * d];
                    let proj_u = &params[p * d..p * d + d * m];
                    let mut next = p * d + d * m;
                    let proj_v = if spec.tied {
                        proj_u
                    } else {
                        next += d * m;
                        &params[next - d * m..next]
                    };
                    let proj_out = &params[next..next + d * m];
                    let (g_embed, rest) = out.split_at_mut(p * d);
                    // dE = dU_tok·P_uᵀ + dV_tok·P_vᵀ + dW·P_outᵀ   (each p×m · m×d)
                    g_embed.fill(F::zero());
                    for (g, proj) in [(gu, proj_u), (gv, proj_v), (gw, proj_out)] {
                        unsafe {
                            F::gemm(
                                p,
                                m,
                                d,
                                F::one(),
                                g.as_ptr(),
                                m as isize,
                                1,
                                proj.as_ptr(),
                                1,
                                m as isize,
                                F::one(),
                                g_embed.as_mut_ptr(),
                                d as isize,
                                1,
                            );
                        }
                    }
                    // dP = Eᵀ·dX  (d×p · p×m)
                    let (g_proj_u, rest) = rest.split_at_mut(d * m);
                    let gemm_et = |g: &[F], dst: &mut [F], beta: F| unsafe {
                        F::gemm(
                            d,
                            p,
                            m,
                            F::one(),
                            embed.as_ptr(),
                            1,
                            d as isize,
                            g.as_ptr(),
                            m as isize,
                            1,
                            beta,
                            dst.as_mut_ptr(),
                            m as isize,
                            1,
                        );
                    };
                    gemm_et(gu, g_proj_u, F::zero());
                    let rest = if spec.tied {
                        gemm_et(gv, g_proj_u, F::one());
                        rest
                    } else {
                        let (g_proj_v, rest) = rest.split_at_mut(d * m);
                        gemm_et(gv, g_proj_v, F::zero());
                        rest
                    };
                    gemm_et(gw, &mut rest[..d * m], F::zero());
                }
            }
        }
    }
}

/// `out (r×m) = a (r×d) · b (d×m)`, all row-major.
fn matmul<F: Real>(a: &[F], b: &[F], out: &mut [F], r: usize, d: usize, m: usize) {
    unsafe {
        F::gemm(
            r,
            d,
            m,
            F::one(),
            a.as_ptr(),
            d as isize,
            1,
            b.as_ptr(),
            m as isize,
            1,
            F::zero(),
            out.as_mut_ptr(),
            m as isize,
            1,
        );
    }
}

/// The effective weights of a batch of models, in the engine's layout: `u`, `v` are
/// `batch × n_in × m` (token-major), `w` is `batch × n_out × m`. Gradients with respect to
/// the weights use the same type.
///
/// Token-major means element `u[(k·n_in + a)·m + i]` is `u_i[a]` of model `k`: the
/// transpose of the paper's `m × n_in`. Use [`Weights::u_array`], [`Weights::v_array`]
/// and [`Weights::w_array`] for the paper orientation. `v` is always stored, also for
/// tied models (then it equals `u`).
#[derive(Clone, Debug, PartialEq)]
pub struct Weights<F> {
    /// Number of models B.
    pub batch: usize,
    /// Input vocabulary size (rows of each model's `u` and `v`).
    pub n_in: usize,
    /// Number of output classes (rows of each model's `w`).
    pub n_out: usize,
    /// Hidden width m (the contiguous, innermost axis of all three).
    pub width: usize,
    /// Input embeddings of the first operand, `batch × n_in × m`.
    pub u: Vec<F>,
    /// Input embeddings of the second operand, `batch × n_in × m`.
    pub v: Vec<F>,
    /// Output weights, `batch × n_out × m`: `w[(k·n_out + c)·m + i]` is `w_i[c]`.
    pub w: Vec<F>,
}

impl<F: Real> Weights<F> {
    /// All-zero weights (or gradients) for `batch` models of `spec`'s shape.
    pub fn zeros(spec: &ModelSpec, batch: usize) -> Weights<F> {
        let (p, m, c) = (spec.n_in, spec.width, spec.n_out);
        Weights {
            batch,
            n_in: p,
            n_out: c,
            width: m,
            u: vec![F::zero(); batch * p * m],
            v: vec![F::zero(); batch * p * m],
            w: vec![F::zero(); batch * c * m],
        }
    }

    /// Builds one model's weights (`batch = 1`) from arrays in the paper's orientation:
    /// `u`, `v` of shape `m × n_in`, `w` of shape `n_out × m`. Mismatched shapes give
    /// [`Error::Shape`].
    pub fn from_arrays(u: &Array2<F>, v: &Array2<F>, w: &Array2<F>) -> Result<Weights<F>> {
        let (m, p) = u.dim();
        let c = w.dim().0;
        if v.dim() != (m, p) {
            return Err(Error::Shape {
                what: "v".into(),
                expected: format!("{m}×{p} (like u)"),
                got: format!("{:?}", v.dim()),
            });
        }
        if w.dim().1 != m {
            return Err(Error::Shape {
                what: "w".into(),
                expected: format!("n_out×{m}"),
                got: format!("{:?}", w.dim()),
            });
        }
        Ok(Weights {
            batch: 1,
            n_in: p,
            n_out: c,
            width: m,
            u: u.t().iter().copied().collect(),
            v: v.t().iter().copied().collect(),
            w: w.iter().copied().collect(),
        })
    }

    /// Copies the models `models` (in that order) into `out`, reshaped to hold just them:
    /// how a pass over a subset of the batch (the models that share a split) gets its
    /// weights. Panics if an index is out of range (callers pass indices they own).
    pub fn gather_models_into(&self, models: &[usize], out: &mut Weights<F>) {
        let (e, o) = (self.n_in * self.width, self.n_out * self.width);
        out.batch = models.len();
        out.n_in = self.n_in;
        out.n_out = self.n_out;
        out.width = self.width;
        for (dst, src, len) in [
            (&mut out.u, &self.u, e),
            (&mut out.v, &self.v, e),
            (&mut out.w, &self.w, o),
        ] {
            dst.clear();
            for &k in models {
                dst.extend_from_slice(&src[k * len..(k + 1) * len]);
            }
        }
    }

    /// The inverse of [`Weights::gather_models_into`]: writes model `j` of `from` back as
    /// model `models[j]` of `self`.
    pub fn scatter_models_from(&mut self, models: &[usize], from: &Weights<F>) {
        let (e, o) = (self.n_in * self.width, self.n_out * self.width);
        for (dst, src, len) in [
            (&mut self.u, &from.u, e),
            (&mut self.v, &from.v, e),
            (&mut self.w, &from.w, o),
        ] {
            for (j, &k) in models.iter().enumerate() {
                dst[k * len..(k + 1) * len].copy_from_slice(&src[j * len..(j + 1) * len]);
            }
        }
    }

    /// Reshapes `self` to `like`'s shape and zeroes it, reusing the allocations.
    pub fn zero_like(&mut self, like: &Weights<F>) {
        self.batch = like.batch;
        self.n_in = like.n_in;
        self.n_out = like.n_out;
        self.width = like.width;
        for (dst, src) in [
            (&mut self.u, &like.u),
            (&mut self.v, &like.v),
            (&mut self.w, &like.w),
        ] {
            dst.clear();
            dst.resize(src.len(), F::zero());
        }
    }

    fn sizes(&self) -> (usize, usize) {
        (self.n_in * self.width, self.n_out * self.width)
    }

    /// Model `k`'s `(u, v, w)` slices in the engine layout (`n_in × m`, `n_in × m`,
    /// `n_out × m`, row-major). Panics if `k ≥ batch`.
    pub fn model(&self, k: usize) -> (&[F], &[F], &[F]) {
        let (e, o) = self.sizes();
        (
            &self.u[k * e..(k + 1) * e],
            &self.v[k * e..(k + 1) * e],
            &self.w[k * o..(k + 1) * o],
        )
    }

    /// Mutable [`Weights::model`].
    pub fn model_mut(&mut self, k: usize) -> (&mut [F], &mut [F], &mut [F]) {
        let (e, o) = self.sizes();
        (
            &mut self.u[k * e..(k + 1) * e],
            &mut self.v[k * e..(k + 1) * e],
            &mut self.w[k * o..(k + 1) * o],
        )
    }

    /// `U` of model `k` as an `m × n_in` array (row i is neuron i's input embedding).
    pub fn u_array(&self, k: usize) -> Array2<F> {
        transpose(self.model(k).0, self.n_in, self.width)
    }
    /// `V` of model `k` as an `m × n_in` array (row i is neuron i's second-input
    /// embedding).
    pub fn v_array(&self, k: usize) -> Array2<F> {
        transpose(self.model(k).1, self.n_in, self.width)
    }
    /// `W` of model `k` as an `n_out × m` array (column i is neuron i's output weights).
    pub fn w_array(&self, k: usize) -> Array2<F> {
        Array2::from_shape_vec((self.n_out, self.width), self.model(k).2.to_vec())
            .expect("shape matches")
    }

    /// Per-neuron squared norms ‖u_i‖² + ‖v_i‖² + ‖w_i‖² of model `k` (length m, in f64).
    /// For a tied model ‖u_i‖² is counted twice, as `v_i = u_i` is a separate input.
    pub fn neuron_sq_norms(&self, k: usize) -> Vec<f64> {
        let (u, v, w) = self.model(k);
        let m = self.width;
        let mut norms = vec![0.0f64; m];
        for rows in [u, v, w] {
            for row in rows.chunks_exact(m) {
                for (n, x) in norms.iter_mut().zip(row) {
                    *n += x.f64() * x.f64();
                }
            }
        }
        norms
    }

    /// The batch's shape (B, n_in, n_out, m).
    pub fn shape(&self) -> WeightsShape {
        WeightsShape {
            batch: self.batch,
            n_in: self.n_in,
            n_out: self.n_out,
            width: self.width,
        }
    }

    /// A borrowed view of these weights: what the engine's calls take (they also take
    /// `&Weights` itself, through [`AsWeightsView`]). Copies nothing. The fields are
    /// public, so the view is not checked here: every engine call checks the lengths
    /// against the shape and refuses a mismatch with [`Error::Shape`].
    pub fn view(&self) -> WeightsView<'_, F> {
        WeightsView {
            shape: self.shape(),
            u: &self.u,
            v: &self.v,
            w: &self.w,
        }
    }

    /// A mutable view, for a backend to write gradients into (see [`Weights::view`]).
    pub fn view_mut(&mut self) -> WeightsViewMut<'_, F> {
        WeightsViewMut {
            shape: self.shape(),
            u: &mut self.u,
            v: &mut self.v,
            w: &mut self.w,
        }
    }

    /// Converts to another float type (elementwise through f64).
    pub fn cast<G: Real>(&self) -> Weights<G> {
        let c = |x: &Vec<F>| x.iter().map(|&e| G::of(e.f64())).collect();
        Weights {
            batch: self.batch,
            n_in: self.n_in,
            n_out: self.n_out,
            width: self.width,
            u: c(&self.u),
            v: c(&self.v),
            w: c(&self.w),
        }
    }
}

fn transpose<F: Real>(tok_major: &[F], p: usize, m: usize) -> Array2<F> {
    Array2::from_shape_vec((p, m), tok_major.to_vec())
        .expect("shape matches")
        .reversed_axes()
        .as_standard_layout()
        .to_owned()
}

/// The shape of a batch of effective weights: `batch` models of `n_in` input tokens,
/// hidden width `width` and `n_out` classes. `u` and `v` hold `batch·n_in·width`
/// values each, `w` holds `batch·n_out·width` (the layout of [`Weights`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WeightsShape {
    /// Number of models B.
    pub batch: usize,
    /// Input vocabulary size (rows of each model's `u` and `v`).
    pub n_in: usize,
    /// Number of output classes (rows of each model's `w`).
    pub n_out: usize,
    /// Hidden width m.
    pub width: usize,
}

impl WeightsShape {
    /// The shape of `batch` models of `spec`.
    pub fn of(spec: &ModelSpec, batch: usize) -> WeightsShape {
        WeightsShape {
            batch,
            n_in: spec.n_in,
            n_out: spec.n_out,
            width: spec.width,
        }
    }

    /// Total lengths `(u and v, w)` of the whole batch; fails for a shape too large to
    /// address at all.
    fn lens(&self) -> Result<(usize, usize)> {
        let Self {
            batch,
            n_in,
            n_out,
            width,
        } = *self;
        let product = |rows: usize| {
            batch
                .checked_mul(rows)
                .and_then(|x| x.checked_mul(width))
                .ok_or_else(|| Error::Shape {
                    what: "weights".into(),
                    expected: "batch × rows × width that fits in memory".into(),
                    got: format!("{batch} × {rows} × {width}"),
                })
        };
        Ok((product(n_in)?, product(n_out)?))
    }

    /// Checks slices of lengths `u`, `v`, `w` against the shape, naming the first one
    /// that does not fit.
    fn check(&self, u: usize, v: usize, w: usize) -> Result<()> {
        let (embed, out) = self.lens()?;
        let WeightsShape {
            batch,
            n_in,
            n_out,
            width,
        } = *self;
        for (what, len, want, rows, n) in [
            ("u", u, embed, "n_in", n_in),
            ("v", v, embed, "n_in", n_in),
            ("w", w, out, "n_out", n_out),
        ] {
            if len != want {
                return Err(Error::Shape {
                    what: what.into(),
                    expected: format!(
                        "batch × {rows} × width = {batch} × {n} × {width} = {want} values"
                    ),
                    got: format!("{len} values"),
                });
            }
        }
        Ok(())
    }

    /// Values of one model's `u` (and `v`): `n_in · width`.
    fn embed_len(&self) -> usize {
        self.n_in * self.width
    }

    /// Values of one model's `w`: `n_out · width`.
    fn out_len(&self) -> usize {
        self.n_out * self.width
    }
}

/// Borrowed effective weights of a batch of models, in the layout of [`Weights`]
/// (token-major `u`, `v`: `batch × n_in × m`; `w`: `batch × n_out × m`). This is what
/// the engine reads: a caller that keeps its weights elsewhere (a NumPy array, a
/// memory map, its own buffers) hands them over without a copy.
///
/// ```
/// use clockwork::engine::{self, CoreSpec, Loss};
/// use clockwork::kinds::{Device, Precision};
/// use clockwork::model::{Activation, WeightsShape, WeightsView};
/// use clockwork::task::{Op, Task};
///
/// // One model of a+b mod 5, width 3, whose weights live in the caller's own vectors.
/// let shape = WeightsShape { batch: 1, n_in: 5, n_out: 5, width: 3 };
/// let u: Vec<f64> = (0..15).map(|i| (i as f64 * 0.37).sin()).collect();
/// let v: Vec<f64> = (0..15).map(|i| (i as f64 * 0.91).cos()).collect();
/// let w: Vec<f64> = (0..15).map(|i| (i as f64 * 0.53).sin()).collect();
/// let view = WeightsView::new(shape, &u, &v, &w)?;
///
/// let backend = engine::open::<f64>(Device::Cpu, Precision::Fp32, 1)?;
/// let task = Task::modular(Op::Add, 5)?;
/// let core = CoreSpec { activation: Activation::Square, loss: Loss::CrossEntropy };
/// let stats = backend.evaluate(core, &view, &task.pairs)?;
/// assert_eq!(stats[0].count, 25);
///
/// // A slice of the wrong length is refused, naming it.
/// let err = WeightsView::new(shape, &u[..14], &v, &w).unwrap_err();
/// assert!(err.to_string().contains("shape mismatch for u"));
/// # Ok::<(), clockwork::Error>(())
/// ```
#[derive(Debug)]
pub struct WeightsView<'a, F> {
    shape: WeightsShape,
    u: &'a [F],
    v: &'a [F],
    w: &'a [F],
}

// Derived Clone/Copy would require F: Clone/Copy; a view copies only its references.
impl<F> Clone for WeightsView<'_, F> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<F> Copy for WeightsView<'_, F> {}

impl<'a, F> WeightsView<'a, F> {
    /// A view of caller-owned slices. Fails with [`Error::Shape`] naming the slice
    /// (`u`, `v` or `w`) whose length does not match `shape`.
    pub fn new(shape: WeightsShape, u: &'a [F], v: &'a [F], w: &'a [F]) -> Result<Self> {
        shape.check(u.len(), v.len(), w.len())?;
        Ok(WeightsView { shape, u, v, w })
    }

    /// Checks the lengths against the shape (a view made by [`Weights::view`] is not
    /// checked when it is made, since `Weights`' fields are public).
    pub fn check(&self) -> Result<()> {
        self.shape.check(self.u.len(), self.v.len(), self.w.len())
    }

    /// The batch's shape.
    pub fn shape(&self) -> WeightsShape {
        self.shape
    }
    /// Number of models B.
    pub fn batch(&self) -> usize {
        self.shape.batch
    }
    /// Input vocabulary size.
    pub fn n_in(&self) -> usize {
        self.shape.n_in
    }
    /// Number of output classes.
    pub fn n_out(&self) -> usize {
        self.shape.n_out
    }
    /// Hidden width m.
    pub fn width(&self) -> usize {
        self.shape.width
    }
    /// All models' `u`, `batch × n_in × m`.
    pub fn u(&self) -> &'a [F] {
        self.u
    }
    /// All models' `v`, `batch × n_in × m`.
    pub fn v(&self) -> &'a [F] {
        self.v
    }
    /// All models' `w`, `batch × n_out × m`.
    pub fn w(&self) -> &'a [F] {
        self.w
    }

    /// Model `k`'s `(u, v, w)` slices (`n_in × m`, `n_in × m`, `n_out × m`, row-major).
    /// Panics if `k ≥ batch` or the view fails [`WeightsView::check`].
    pub fn model(&self, k: usize) -> (&'a [F], &'a [F], &'a [F]) {
        let (e, o) = (self.shape.embed_len(), self.shape.out_len());
        (
            &self.u[k * e..(k + 1) * e],
            &self.v[k * e..(k + 1) * e],
            &self.w[k * o..(k + 1) * o],
        )
    }
}

impl<F: Clone> WeightsView<'_, F> {
    /// An owned copy.
    pub fn to_weights(&self) -> Weights<F> {
        Weights {
            batch: self.shape.batch,
            n_in: self.shape.n_in,
            n_out: self.shape.n_out,
            width: self.shape.width,
            u: self.u.to_vec(),
            v: self.v.to_vec(),
            w: self.w.to_vec(),
        }
    }
}

/// Mutably borrowed weights in the layout of [`Weights`]: where a backend writes
/// gradients when the caller owns the buffers. Built by [`WeightsViewMut::new`]
/// (lengths checked) or [`Weights::view_mut`].
#[derive(Debug)]
pub struct WeightsViewMut<'a, F> {
    shape: WeightsShape,
    u: &'a mut [F],
    v: &'a mut [F],
    w: &'a mut [F],
}

impl<'a, F> WeightsViewMut<'a, F> {
    /// A mutable view of caller-owned slices. Fails with [`Error::Shape`] naming the
    /// slice whose length does not match `shape`.
    pub fn new(
        shape: WeightsShape,
        u: &'a mut [F],
        v: &'a mut [F],
        w: &'a mut [F],
    ) -> Result<Self> {
        shape.check(u.len(), v.len(), w.len())?;
        Ok(WeightsViewMut { shape, u, v, w })
    }

    /// The batch's shape.
    pub fn shape(&self) -> WeightsShape {
        self.shape
    }

    /// The three buffers `(u, v, w)`, whole batch.
    pub fn parts_mut(&mut self) -> (&mut [F], &mut [F], &mut [F]) {
        (&mut *self.u, &mut *self.v, &mut *self.w)
    }

    /// Model `k`'s `(u, v, w)` slices. Panics if `k ≥ batch`.
    pub fn model_mut(&mut self, k: usize) -> (&mut [F], &mut [F], &mut [F]) {
        let (e, o) = (self.shape.embed_len(), self.shape.out_len());
        (
            &mut self.u[k * e..(k + 1) * e],
            &mut self.v[k * e..(k + 1) * e],
            &mut self.w[k * o..(k + 1) * o],
        )
    }

    /// A read-only view of the same buffers.
    pub fn as_view(&self) -> WeightsView<'_, F> {
        WeightsView {
            shape: self.shape,
            u: self.u,
            v: self.v,
            w: self.w,
        }
    }
}

/// Anything the engine can read weights from: [`Weights`] and [`WeightsView`]. The
/// [`crate::engine::Backend`] calls take `&dyn AsWeightsView`, so `&weights` and
/// `&view` both pass.
pub trait AsWeightsView<F> {
    /// The weights as a borrowed view.
    fn weights_view(&self) -> WeightsView<'_, F>;
}

impl<F: Real> AsWeightsView<F> for Weights<F> {
    fn weights_view(&self) -> WeightsView<'_, F> {
        self.view()
    }
}

impl<F> AsWeightsView<F> for WeightsView<'_, F> {
    fn weights_view(&self) -> WeightsView<'_, F> {
        *self
    }
}

/// Where a backend writes gradients: an owned [`Weights`], which is reshaped to fit
/// (and zeroed), or a caller's [`WeightsViewMut`], which must already have the shape.
pub trait GradsBuffer<F> {
    /// A mutable view of exactly `shape`. Fails with [`Error::Shape`] for a borrowed
    /// buffer of another shape.
    fn fit(&mut self, shape: WeightsShape) -> Result<WeightsViewMut<'_, F>>;
}

impl<F: Real> GradsBuffer<F> for Weights<F> {
    fn fit(&mut self, shape: WeightsShape) -> Result<WeightsViewMut<'_, F>> {
        let (embed, out) = shape.lens()?;
        self.batch = shape.batch;
        self.n_in = shape.n_in;
        self.n_out = shape.n_out;
        self.width = shape.width;
        for (dst, len) in [
            (&mut self.u, embed),
            (&mut self.v, embed),
            (&mut self.w, out),
        ] {
            dst.clear();
            dst.resize(len, F::zero());
        }
        Ok(self.view_mut())
    }
}

impl<F> GradsBuffer<F> for WeightsViewMut<'_, F> {
    fn fit(&mut self, shape: WeightsShape) -> Result<WeightsViewMut<'_, F>> {
        if self.shape != shape {
            return Err(Error::Shape {
                what: "gradient buffer".into(),
                expected: format!("the weights' shape {shape:?}"),
                got: format!("{:?}", self.shape),
            });
        }
        Ok(WeightsViewMut {
            shape,
            u: &mut *self.u,
            v: &mut *self.v,
            w: &mut *self.w,
        })
    }
}
