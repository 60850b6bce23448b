//! [`Weights`], the effective U, V, W the engine reads, and the borrowed views over
//! caller-owned buffers ([`WeightsView`], [`WeightsViewMut`]) that the backends take
//! through [`AsWeightsView`] and [`GradsBuffer`].

use super::*;

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
        neuron_sq_norms(self.model(k), self.width)
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

/// One model's `(u, v, w)` in the engine layout ([`Weights::model`]).
pub(crate) type ModelParts<'a, F> = (&'a [F], &'a [F], &'a [F]);

/// Per-neuron squared norms ‖u_i‖² + ‖v_i‖² + ‖w_i‖² of one model of width `m`, in f64
/// (what the regularizers penalize).
pub(crate) fn neuron_sq_norms<F: Real>((u, v, w): ModelParts<'_, F>, m: usize) -> Vec<f64> {
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
