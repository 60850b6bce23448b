//! The typed choices a run makes — element type, device, product precision, loss —
//! parsed once from their config spelling and passed around as enums from then on.
//!
//! They live below the engine (this module imports nothing but the error type), so the
//! config can name them without importing the engine, and the engine can take them
//! without importing the config. Each parses with [`std::str::FromStr`] into an
//! [`Error::InvalidConfig`] naming the key and the accepted spellings, and (de)serializes
//! as that same string, so a TOML typo is reported with the key's name.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Implements `Display`, `Serialize` and `Deserialize` through the string spelling, so
/// every choice reads and writes the way a user types it.
macro_rules! string_serde {
    ($t:ty) => {
        impl Serialize for $t {
            fn serialize<S: serde::Serializer>(
                &self,
                s: S,
            ) -> std::result::Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(
                d: D,
            ) -> std::result::Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

/// Element type of the parameters and of every pass (`"f32"` or `"f64"`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Dtype {
    /// Single precision: the fast path.
    #[default]
    F32,
    /// Double precision: the reference path correctness tests compare against.
    F64,
}

impl Dtype {
    /// The spelling in configs and checkpoints (`"f32"`, `"f64"`), also
    /// [`crate::real::Real::NAME`] of the matching Rust type.
    pub fn name(self) -> &'static str {
        match self {
            Dtype::F32 => "f32",
            Dtype::F64 => "f64",
        }
    }
}

impl fmt::Display for Dtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Dtype {
    type Err = Error;
    fn from_str(s: &str) -> Result<Dtype> {
        match s {
            "f32" => Ok(Dtype::F32),
            "f64" => Ok(Dtype::F64),
            _ => Err(Error::config("dtype", s, "expected f32 or f64")),
        }
    }
}
string_serde!(Dtype);

/// Where the engine runs (`"cpu"`, `"cuda"` = `"cuda:0"`, or `"cuda:N"`). Parsing checks
/// only the spelling; whether the device exists is found out when it is opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Device {
    /// The CPU backend.
    #[default]
    Cpu,
    /// The CUDA device with this ordinal.
    Cuda(usize),
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Cpu => f.write_str("cpu"),
            Device::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

impl FromStr for Device {
    type Err = Error;
    fn from_str(s: &str) -> Result<Device> {
        match s {
            "cpu" => Ok(Device::Cpu),
            "cuda" => Ok(Device::Cuda(0)),
            _ => s
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(Device::Cuda)
                .ok_or_else(|| Error::config("device", s, "expected cpu, cuda or cuda:N")),
        }
    }
}
string_serde!(Device);

/// Arithmetic of the CUDA backend's three big products (everything else is fp32 in
/// every mode; the CPU always computes in the run's [`Dtype`]). Written `"fp32"` (also
/// `"f32"`, `"exact"`), `"tf32"` or `"bf16"`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Precision {
    /// Exact fp32 FMA on the CUDA cores (the default).
    #[default]
    Fp32,
    /// TF32 tensor cores (10-bit mantissa inputs, fp32 accumulate): ~1e-3 relative error.
    Tf32,
    /// bf16 inputs, fp32 accumulate (tensor cores): ~1e-2 relative error.
    Bf16,
}

impl Precision {
    /// The value of `CW_MMA` the kernels are compiled with.
    pub fn mma_code(self) -> u32 {
        match self {
            Precision::Fp32 => 0,
            Precision::Tf32 => 1,
            Precision::Bf16 => 2,
        }
    }
    /// Every precision, from most to least exact.
    pub const ALL: [Precision; 3] = [Precision::Fp32, Precision::Tf32, Precision::Bf16];
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Precision::Fp32 => "fp32",
            Precision::Tf32 => "tf32",
            Precision::Bf16 => "bf16",
        })
    }
}

impl FromStr for Precision {
    type Err = Error;
    fn from_str(s: &str) -> Result<Precision> {
        match s {
            "fp32" | "f32" | "exact" => Ok(Precision::Fp32),
            "tf32" => Ok(Precision::Tf32),
            "bf16" => Ok(Precision::Bf16),
            _ => Err(Error::config(
                "precision",
                s,
                "expected fp32 (exact, the default), tf32 or bf16",
            )),
        }
    }
}
string_serde!(Precision);

/// The training loss (`"cross_entropy"` or `"mse"` in configs; `"ce"` also parses).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Loss {
    /// Mean softmax cross-entropy over the pairs.
    #[default]
    CrossEntropy,
    /// Mean over pairs and classes of `(f_c − 1[c = y])²` (PyTorch's `MSELoss` on one-hot
    /// targets, as in Gromov's analytic-solution paper).
    Mse,
}

impl fmt::Display for Loss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Loss::CrossEntropy => "cross_entropy",
            Loss::Mse => "mse",
        })
    }
}

impl FromStr for Loss {
    type Err = Error;
    fn from_str(s: &str) -> Result<Loss> {
        match s {
            "cross_entropy" | "ce" => Ok(Loss::CrossEntropy),
            "mse" => Ok(Loss::Mse),
            _ => Err(Error::config(
                "train.loss",
                s,
                "expected cross_entropy or mse",
            )),
        }
    }
}
string_serde!(Loss);

/// Regularizer applied to the effective U, V, W (not to the factors of a factored
/// model), per neuron, with `n_i = ‖u_i‖² + ‖v_i‖² + ‖w_i‖²`. In TOML: `"none"`, `"l2"`,
/// `"l23"`, `"l2k"`, `"l1"`. The strength λ is `train.reg_strength`, the exponent of `l2k`
/// `train.reg_q`.
///
/// The penalty that pushes a network's normalized margin up is the one matched to its
/// homogeneity degree h (theory.md §4): `λ Σ_i n_i^{h/2}`, which is `l2k` with q = h
/// (its default): L2 for ReLU (h = 2), L_{2,3} for x², L_{2,k+1} for x^k.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegularizerKind {
    /// No regularization (`"none"`); `reg_strength` is ignored.
    None,
    /// (λ/2) Σ (‖u_i‖² + ‖v_i‖² + ‖w_i‖²)
    L2,
    /// λ Σ_i (‖u_i‖² + ‖v_i‖² + ‖w_i‖²)^{3/2}, the norm of the margin theory.
    L23,
    /// L_{2,q}: λ Σ_i (‖u_i‖² + ‖v_i‖² + ‖w_i‖²)^{q/2}, q ≥ 1 (`train.reg_q`, default
    /// the activation's homogeneity degree). q = 3 is `l23`; q = 2 is `l2` at twice the
    /// strength (λ Σ n_i = 2 · (λ/2) Σ n_i).
    L2k,
    /// λ Σ |θ| over every entry of U, V, W (seed 003's weight decay on its 1s-and-0s
    /// task); subgradient λ·sign(θ), 0 at θ = 0. Per entry, not per neuron.
    L1,
}

impl RegularizerKind {
    /// The spelling in configs (`"none"`, `"l2"`, `"l23"`, `"l2k"`).
    pub fn name(self) -> &'static str {
        match self {
            RegularizerKind::None => "none",
            RegularizerKind::L2 => "l2",
            RegularizerKind::L23 => "l23",
            RegularizerKind::L2k => "l2k",
            RegularizerKind::L1 => "l1",
        }
    }
}

/// The update rule (`"gd"` or `"adamw"` in TOML).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OptimizerKind {
    /// Full-batch gradient descent, `θ ← θ − lr·g`. Ignores `beta1`, `beta2`, `eps` and
    /// `weight_decay` (use an L2 regularizer for weight decay under GD).
    Gd,
    /// Adam with decoupled weight decay (PyTorch's AdamW).
    Adamw,
}

/// Which Grokfast gradient filter runs (`"ema"` or `"ma"` in TOML); its strength λ is
/// per model (`optimizer.grokfast_lambda`, 0 = off).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrokfastKind {
    /// Grokfast-EMA: μ ← α·μ + (1−α)·g (μ starts at the first gradient), g ← g + λ·μ.
    #[default]
    Ema,
    /// Grokfast-MA: g ← g + λ·mean(last `window` gradients, this one included).
    Ma,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_choice_round_trips_through_its_spelling() {
        for d in [Dtype::F32, Dtype::F64] {
            assert_eq!(d.to_string().parse::<Dtype>().unwrap(), d);
        }
        for d in [Device::Cpu, Device::Cuda(0), Device::Cuda(3)] {
            assert_eq!(d.to_string().parse::<Device>().unwrap(), d);
        }
        for p in Precision::ALL {
            assert_eq!(p.to_string().parse::<Precision>().unwrap(), p);
        }
        for l in [Loss::CrossEntropy, Loss::Mse] {
            assert_eq!(l.to_string().parse::<Loss>().unwrap(), l);
        }
        for r in [
            RegularizerKind::None,
            RegularizerKind::L2,
            RegularizerKind::L23,
            RegularizerKind::L2k,
            RegularizerKind::L1,
        ] {
            let json = serde_json::to_string(&r).unwrap();
            assert_eq!(json, format!("\"{}\"", r.name()));
            assert_eq!(serde_json::from_str::<RegularizerKind>(&json).unwrap(), r);
        }
        assert_eq!("cuda".parse::<Device>().unwrap(), Device::Cuda(0));
        assert_eq!("exact".parse::<Precision>().unwrap(), Precision::Fp32);
    }

    #[test]
    fn bad_spellings_name_the_key_and_the_value() {
        let e = "f16".parse::<Dtype>().unwrap_err().to_string();
        assert!(e.contains("dtype = f16") && e.contains("f64"), "{e}");
        let e = "gpu".parse::<Device>().unwrap_err().to_string();
        assert!(e.contains("device = gpu") && e.contains("cuda:N"), "{e}");
        let e = "cuda:x".parse::<Device>().unwrap_err().to_string();
        assert!(e.contains("device = cuda:x"), "{e}");
        let e = "fp16".parse::<Precision>().unwrap_err().to_string();
        assert!(e.contains("precision = fp16"), "{e}");
        let e = "hinge".parse::<Loss>().unwrap_err().to_string();
        assert!(e.contains("train.loss = hinge"), "{e}");
    }
}
