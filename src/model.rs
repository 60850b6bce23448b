//! The two-layer MLP: its shape, activation, parameters and their initialization.
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
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

mod fourier_sparse;
mod weights;

pub(crate) use weights::{neuron_sq_norms, ModelParts};
pub use weights::{AsWeightsView, GradsBuffer, Weights, WeightsShape, WeightsView, WeightsViewMut};

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
    /// Dense first layer (bit-string tasks): `h = σ(U x)` with `x ∈ R^n_in` a whole input
    /// vector rather than two tokens, so the model has `u` (stored `n_in × m`, row j the
    /// weights of input j) and `w` but no `v`; its effective `V` is zero, which keeps
    /// the norms, regularizers and margins of the shared code exact for it. Absent from
    /// serialized specs when false, so older checkpoints read unchanged.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dense: bool,
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
        if self.dense && (self.tied || self.embed_dim.is_some()) {
            return Err(Error::config(
                "model.tied",
                self.tied,
                "a dense first layer (bit-string task) has one input matrix: it is neither tied nor factored (leave model.tied and model.embed_dim out)",
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
    /// Unfactored: `u`, `v` (absent when tied or dense), `w`. Factored: `embed` (`n_in × d`),
    /// `proj_u`, `proj_v` (absent when tied), `proj_out` (each `d × m`). This is the
    /// layout of [`Params::data`] for each model.
    pub fn tensors(&self) -> Vec<(&'static str, [usize; 2])> {
        let (p, m, c) = (self.n_in, self.width, self.n_out);
        match self.embed_dim {
            None => {
                let mut t = vec![("u", [p, m])];
                if !self.tied && !self.dense {
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

    /// Like [`Params::effective`], reusing `out`'s storage. Models are independent, so
    /// a large batch computes them in parallel (see `models_per_task`); each model's
    /// values are the same whichever thread computes them.
    pub fn effective_into(&self, out: &mut Weights<F>) {
        let n = self.spec.n_params();
        let embed = self.spec.n_in * self.spec.width;
        let outs = self.spec.n_out * self.spec.width;
        self.data
            .par_chunks(n)
            .zip(out.u.par_chunks_mut(embed))
            .zip(out.v.par_chunks_mut(embed))
            .zip(out.w.par_chunks_mut(outs))
            .with_min_len(models_per_task(n))
            .for_each(|(((params, u), v), w)| self.effective_model(params, u, v, w));
    }

    /// One model's effective `u`, `v`, `w` from its parameters.
    pub(crate) fn effective_model(&self, params: &[F], u: &mut [F], v: &mut [F], w: &mut [F]) {
        let spec = &self.spec;
        let (p, m, c) = (spec.n_in, spec.width, spec.n_out);
        match spec.embed_dim {
            None => {
                u.copy_from_slice(&params[..p * m]);
                let rest = &params[p * m..];
                let rest = if spec.dense {
                    // A dense first layer has no V: its effective V is zero.
                    v.fill(F::zero());
                    rest
                } else if spec.tied {
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
                matmul(embed, proj_u, u, p, d, m);
                if spec.tied {
                    // V = E·P_u = U: copied, not multiplied again.
                    v.copy_from_slice(u);
                } else {
                    next += d * m;
                    matmul(embed, &params[next - d * m..next], v, p, d, m);
                }
                let proj_out = &params[next..next + d * m];
                matmul(embed, proj_out, w, c, d, m);
            }
        }
    }

    /// Maps gradients with respect to the effective weights onto the parameters
    /// (sums the two embedding gradients when tied, chains through the factors).
    /// `out` has the layout of [`Params::data`] and is overwritten. Parallel over the
    /// models of a large batch, like [`Params::effective_into`].
    pub fn chain_grads(&self, grads: &Weights<F>, out: &mut [F]) {
        let n = self.spec.n_params();
        let embed = self.spec.n_in * self.spec.width;
        let outs = self.spec.n_out * self.spec.width;
        let scratch = match (self.spec.embed_dim, self.spec.tied) {
            (Some(_), true) => embed,
            _ => 0,
        };
        out.par_chunks_mut(n)
            .zip(self.data.par_chunks(n))
            .zip(grads.u.par_chunks(embed))
            .zip(grads.v.par_chunks(embed))
            .zip(grads.w.par_chunks(outs))
            .with_min_len(models_per_task(n))
            .for_each_init(
                || vec![F::zero(); scratch],
                |sum, ((((out, params), gu), gv), gw)| {
                    self.chain_model(params, (gu, gv, gw), out, sum)
                },
            );
    }

    /// [`Params::chain_grads`] of one model; `sum` is `n_in × m` scratch for a tied
    /// factored model (empty otherwise).
    pub(crate) fn chain_model(
        &self,
        params: &[F],
        (gu, gv, gw): (&[F], &[F], &[F]),
        out: &mut [F],
        sum: &mut [F],
    ) {
        let spec = &self.spec;
        let (p, m, c) = (spec.n_in, spec.width, spec.n_out);
        match spec.embed_dim {
            None => {
                let (o_u, rest) = out.split_at_mut(p * m);
                for ((o, a), b) in o_u.iter_mut().zip(gu).zip(gv) {
                    *o = if spec.tied { *a + *b } else { *a };
                }
                let rest = if spec.tied || spec.dense {
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
                // Tied, U and V are the same product E·P_u, so their gradients enter
                // both chains summed: one product each instead of two.
                let token_grads: Vec<(&[F], &[F])> = if spec.tied {
                    for ((s, a), b) in sum.iter_mut().zip(gu).zip(gv) {
                        *s = *a + *b;
                    }
                    vec![(&*sum, proj_u), (gw, proj_out)]
                } else {
                    vec![(gu, proj_u), (gv, proj_v), (gw, proj_out)]
                };
                let (g_embed, rest) = out.split_at_mut(p * d);
                // dE = dU_tok·P_uᵀ + dV_tok·P_vᵀ + dW·P_outᵀ   (each p×m · m×d)
                g_embed.fill(F::zero());
                for &(g, proj) in &token_grads {
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
                // dP = Eᵀ·dX  (d×p · p×m), one per factor after the embedding.
                for (&(g, _), dst) in token_grads.iter().zip(rest.chunks_exact_mut(d * m)) {
                    unsafe {
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
                            F::zero(),
                            dst.as_mut_ptr(),
                            m as isize,
                            1,
                        );
                    }
                }
            }
        }
    }
}

/// Models per parallel task in the per-model loops over a batch (effective weights,
/// chain rule, optimizer): enough that a task holds about 64 K parameters, so a small
/// batch of small models runs in the calling thread — rayon does not split below
/// this — and never waits on the thread pool for microseconds of work.
pub(crate) fn models_per_task(params_per_model: usize) -> usize {
    (1usize << 16).div_ceil(params_per_model.max(1))
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
