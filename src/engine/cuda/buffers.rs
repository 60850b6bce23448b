//! What one pass needs on the device besides the weights' shape: the batch's dimensions
//! ([`Dims`]), the effective weights and their gradients ([`DevWeights`]), the chunking
//! of the pairs ([`Plan`]), the pairs themselves with the CSR indices the σ'-scatter
//! reads, an optional head layout and, for bit strings, the dense-input encoding
//! ([`DevPairs`], [`DevHeads`], [`DenseBits`]), and the per-call scratch
//! ([`Workspace`]). Split from `device.rs`, which keeps the context and the
//! launch sequence that fills them.

use super::device::{Gpu, DEFAULT_CHUNK_MIB, FWD_BM, MIN_SPLIT_ROWS, SLAB};
use crate::error::{Error, Result};
use crate::task::{Inputs, PairSet};
use cudarc::driver::CudaSlice;

/// Shape of a batch of models.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Dims {
    pub batch: usize,
    pub n_in: usize,
    pub n_out: usize,
    pub m: usize,
}

impl Dims {
    pub fn emb_len(&self) -> usize {
        self.n_in * self.m
    }
    pub fn w_len(&self) -> usize {
        self.n_out * self.m
    }
}

/// Device copies of U, V, W (or their gradients) for the whole batch, model-major.
pub(crate) struct DevWeights {
    pub u: CudaSlice<f32>,
    pub v: CudaSlice<f32>,
    pub w: CudaSlice<f32>,
}

impl DevWeights {
    pub fn zeros(gpu: &Gpu, d: Dims) -> Result<DevWeights> {
        Ok(DevWeights {
            u: gpu.alloc(d.batch * d.emb_len())?,
            v: gpu.alloc(d.batch * d.emb_len())?,
            w: gpu.alloc(d.batch * d.w_len())?,
        })
    }
}

/// How a pass over `n_pairs` pairs is cut: chunks of rows (only when the buffers of one
/// chunk would exceed the budget) and the dW row splits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Plan {
    pub n_pairs: usize,
    pub chunk_rows: usize,
    /// Most dW splits of any chunk (sizes the partials buffer).
    pub max_splits: usize,
}

impl Plan {
    pub fn new(gpu: &Gpu, d: Dims, n_pairs: usize) -> Plan {
        let budget = std::env::var("CLOCKWORK_CUDA_CHUNK_MIB")
            .ok()
            .and_then(|s| s.parse::<usize>().ok())
            .unwrap_or(DEFAULT_CHUNK_MIB)
            << 20;
        let per_row = 4 * d.batch * (d.n_out + d.m);
        // gridDim.y of the row-tiled kernels is at most 65535 tiles of 64 rows.
        let mut chunk_rows = (budget / per_row.max(1)).clamp(FWD_BM, 65535 * FWD_BM);
        if chunk_rows < n_pairs {
            chunk_rows -= chunk_rows % FWD_BM;
        } else {
            chunk_rows = n_pairs;
        }
        let mut plan = Plan {
            n_pairs,
            chunk_rows,
            max_splits: 1,
        };
        plan.max_splits = plan.splits(gpu, d, chunk_rows).0;
        plan
    }

    /// Chunks as (first row, rows).
    pub fn chunks(&self) -> Vec<(usize, usize)> {
        (0..self.n_pairs.div_ceil(self.chunk_rows).max(1))
            .map(|c| {
                let start = c * self.chunk_rows;
                (start, self.chunk_rows.min(self.n_pairs - start))
            })
            .collect()
    }

    /// (splits, rows per split) of dW for a chunk of `rows` rows: enough blocks to fill
    /// the GPU about four times over, each split at least MIN_SPLIT_ROWS rows.
    pub fn splits(&self, gpu: &Gpu, d: Dims, rows: usize) -> (usize, usize) {
        let bm = if d.n_out <= 32 { 32 } else { 64 };
        let tiles = d.m.div_ceil(64) * d.n_out.div_ceil(bm) * d.batch;
        let target = 4 * gpu.sms;
        let s = (target / tiles.max(1))
            .min(rows.div_ceil(MIN_SPLIT_ROWS))
            .min(65535 / d.batch)
            .max(1);
        let per = rows.div_ceil(s).div_ceil(SLAB) * SLAB;
        (rows.div_ceil(per).max(1), per)
    }
}

/// A pair set on the device, with the per-chunk CSR lists of rows per token.
pub(crate) struct DevPairs {
    pub len: usize,
    pub chunk_rows: usize,
    /// Bit strings: `a` holds masks and the pass takes the dense-input kernels (no CSR
    /// lists then: the dU product reads the masks). None for token pairs.
    pub dense: Option<DenseBits>,
    pub a: CudaSlice<u32>,
    pub b: CudaSlice<u32>,
    pub y: CudaSlice<u32>,
    /// Per chunk c: (n_in + 1) offsets at c*(n_in+1), into the row list starting at the
    /// chunk's first row (rows are chunk-relative, ascending).
    pub ptr_a: CudaSlice<i32>,
    pub rows_a: CudaSlice<i32>,
    pub ptr_b: CudaSlice<i32>,
    pub rows_b: CudaSlice<i32>,
    /// The head layout of a multi-head pair set, uploaded with it.
    pub heads: Option<DevHeads>,
}

/// How the dense-input kernels read a mask (kernels/bit_inputs.cuh): `bits` inputs, bit
/// j giving `x_set` when set and `x_clear` when clear ([`crate::task::BitEncoding`]), as
/// the small integers the parameter structs carry (kernels/common.cuh says why).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DenseBits {
    pub bits: i16,
    pub x_set: i8,
    pub x_clear: i8,
}

impl DenseBits {
    /// The encoding of a bit-string pair set, None for token pairs; an error for an
    /// encoding whose values are not small integers (none today: ±1 and 0/1).
    pub fn of(inputs: Inputs) -> Result<Option<DenseBits>> {
        let Some((bits, encoding)) = inputs.bits() else {
            return Ok(None);
        };
        let small = |set: bool| -> Result<i8> {
            let x = encoding.value(set);
            if x.fract() == 0.0 && x.abs() <= 127.0 {
                Ok(x as i8)
            } else {
                Err(Error::backend(format!(
                    "the CUDA dense-input kernels take bit values that are small integers; \
                     encoding {} gives {x}",
                    encoding.name()
                )))
            }
        };
        Ok(Some(DenseBits {
            bits: i16::try_from(bits).map_err(|_| {
                Error::backend(format!("{bits} input bits do not fit the kernels' i16"))
            })?,
            x_set: small(true)?,
            x_clear: small(false)?,
        }))
    }
}

/// A head layout ([`crate::task::Heads`]) on the device: what `heads_rows` reads.
pub(crate) struct DevHeads {
    pub count: usize,
    pub offset: CudaSlice<i32>,
    pub size: CudaSlice<i32>,
    pub weight: CudaSlice<f32>,
}

/// CSR of `tokens` (one per row) over `n_in` values: offsets and row lists.
fn csr(tokens: &[u32], n_in: usize) -> (Vec<i32>, Vec<i32>) {
    let mut ptr = vec![0i32; n_in + 1];
    for &t in tokens {
        ptr[t as usize + 1] += 1;
    }
    for i in 0..n_in {
        ptr[i + 1] += ptr[i];
    }
    let mut fill = ptr.clone();
    let mut rows = vec![0i32; tokens.len()];
    for (r, &t) in tokens.iter().enumerate() {
        rows[fill[t as usize] as usize] = r as i32;
        fill[t as usize] += 1;
    }
    (ptr, rows)
}

impl DevPairs {
    pub fn new(gpu: &Gpu, pairs: &PairSet, n_in: usize, plan: &Plan) -> Result<DevPairs> {
        let dense = DenseBits::of(pairs.inputs)?;
        let (mut pa, mut ra, mut pb, mut rb) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        // Masks are no token indices: a dense set has no CSR lists.
        let chunks = if dense.is_some() {
            Vec::new()
        } else {
            plan.chunks()
        };
        for (start, rows) in chunks {
            let (p, r) = csr(&pairs.a[start..start + rows], n_in);
            pa.extend(p);
            ra.extend(r);
            let (p, r) = csr(&pairs.b[start..start + rows], n_in);
            pb.extend(p);
            rb.extend(r);
        }
        let up_u32 = |v: &[u32]| -> Result<CudaSlice<u32>> {
            let mut d = gpu.alloc(v.len())?;
            gpu.upload(v, &mut d)?;
            Ok(d)
        };
        let up_i32 = |v: &[i32]| -> Result<CudaSlice<i32>> {
            let mut d = gpu.alloc(v.len())?;
            gpu.upload(v, &mut d)?;
            Ok(d)
        };
        Ok(DevPairs {
            len: pairs.len(),
            chunk_rows: plan.chunk_rows,
            dense,
            a: up_u32(&pairs.a)?,
            b: up_u32(&pairs.b)?,
            y: up_u32(&pairs.label)?,
            ptr_a: up_i32(&pa)?,
            rows_a: up_i32(&ra)?,
            ptr_b: up_i32(&pb)?,
            rows_b: up_i32(&rb)?,
            heads: match &pairs.heads {
                None => None,
                Some(h) => {
                    let list = h.heads();
                    let ints = |f: fn(&crate::task::Head) -> usize| -> Vec<i32> {
                        list.iter().map(|x| f(x) as i32).collect()
                    };
                    let weights: Vec<f32> = list.iter().map(|x| x.weight as f32).collect();
                    let mut weight = gpu.alloc(weights.len())?;
                    gpu.upload(&weights, &mut weight)?;
                    Some(DevHeads {
                        count: list.len(),
                        offset: up_i32(&ints(|x| x.offset))?,
                        size: up_i32(&ints(|x| x.size))?,
                        weight,
                    })
                }
            },
        })
    }
}

/// Per-pass scratch: chunk buffers, per-row statistics, per-model results.
pub(crate) struct Workspace {
    pub dims: Dims,
    pub plan: Plan,
    /// `[B][chunk rows][n_out]`: logits, then G.
    pub g: CudaSlice<f32>,
    /// `[B][chunk rows][m]`: σ'(s) ⊙ D.
    pub ds: CudaSlice<f32>,
    /// `[B][max splits][n_out][m]`: the dW partials, and for dense passes also the dU
    /// partials (`[B][max splits][n_in][m]`, after dW's are summed), so it holds the larger.
    pub dw_part: CudaSlice<f32>,
    /// `[B][n_pairs]` each.
    pub row_loss: CudaSlice<f32>,
    pub row_margin: CudaSlice<f32>,
    /// `[B][3]`: mean loss, correct, min margin.
    pub stats: CudaSlice<f64>,
    /// Heads of the pair sets this workspace serves (0: plain passes).
    pub n_heads: usize,
    /// Whether it serves dense-input (bit-string) passes (sizes `dw_part`).
    pub dense: bool,
    /// `[B][n_heads][n_pairs]` each: every head's loss and margin per row (multi-head
    /// passes; empty otherwise).
    pub head_loss: CudaSlice<f32>,
    pub head_margin: CudaSlice<f32>,
}

impl Workspace {
    pub fn new(
        gpu: &Gpu,
        dims: Dims,
        plan: Plan,
        grads: bool,
        n_heads: usize,
        dense: bool,
    ) -> Result<Workspace> {
        let b = dims.batch;
        let needs_part = plan.max_splits > 1 || plan.chunk_rows < plan.n_pairs;
        let part_len = if dense {
            dims.w_len().max(dims.emb_len())
        } else {
            dims.w_len()
        };
        Ok(Workspace {
            dims,
            plan,
            g: gpu.alloc(b * plan.chunk_rows * dims.n_out)?,
            ds: gpu.alloc(if grads {
                b * plan.chunk_rows * dims.m
            } else {
                0
            })?,
            dw_part: gpu.alloc(if grads && needs_part {
                b * plan.max_splits * part_len
            } else {
                0
            })?,
            row_loss: gpu.alloc(b * plan.n_pairs)?,
            row_margin: gpu.alloc(b * plan.n_pairs)?,
            stats: gpu.alloc(b * 3)?,
            n_heads,
            dense,
            head_loss: gpu.alloc(b * n_heads * plan.n_pairs)?,
            head_margin: gpu.alloc(b * n_heads * plan.n_pairs)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{csr, DenseBits};
    use crate::task::{BitEncoding, Inputs};

    #[test]
    fn dense_bits_carry_each_encodings_values() {
        let of = |encoding| DenseBits::of(Inputs::Bits { n: 30, encoding }).unwrap();
        let pm1 = of(BitEncoding::PlusMinusOne).unwrap();
        assert_eq!((pm1.bits, pm1.x_set, pm1.x_clear), (30, -1, 1));
        let zero_one = of(BitEncoding::ZeroOne).unwrap();
        assert_eq!((zero_one.x_set, zero_one.x_clear), (1, 0));
        assert_eq!(DenseBits::of(Inputs::Tokens).unwrap(), None);
    }

    #[test]
    fn csr_lists_rows_per_token_in_order() {
        let (ptr, rows) = csr(&[2, 0, 2, 1, 0], 3);
        assert_eq!(ptr, vec![0, 2, 3, 5]);
        assert_eq!(rows, vec![1, 4, 3, 0, 2]);
    }
}
