//! Operation tables over Z_p.

use super::{PairSet, Task};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// A binary operation over Z_p, written in configs by its [`Op::name`] (`"add"`, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    /// `(a + b) mod p`
    Add,
    /// `(a - b) mod p`
    Sub,
    /// `(a · b) mod p` (needs p prime so the table is a field's)
    Mul,
    /// `(a · b⁻¹) mod p`, `b ≠ 0` (needs p prime); the table has no `b = 0` column, so it
    /// has p(p−1) pairs
    Div,
    /// `(a² + a·b + b²) mod p`
    Quad,
}

impl Op {
    /// Every operation, in declaration order.
    pub const ALL: [Op; 5] = [Op::Add, Op::Sub, Op::Mul, Op::Div, Op::Quad];

    /// The name used in configs, on the command line and by `FromStr` (`"add"`,
    /// `"sub"`, `"mul"`, `"div"`, `"quad"`).
    pub fn name(self) -> &'static str {
        match self {
            Op::Add => "add",
            Op::Sub => "sub",
            Op::Mul => "mul",
            Op::Div => "div",
            Op::Quad => "quad",
        }
    }

    fn formula(self) -> &'static str {
        match self {
            Op::Add => "a+b",
            Op::Sub => "a-b",
            Op::Mul => "a*b",
            Op::Div => "a/b",
            Op::Quad => "a^2+ab+b^2",
        }
    }

    /// Whether the operation is only well-defined (or only interesting) over a field.
    pub fn needs_prime(self) -> bool {
        matches!(self, Op::Mul | Op::Div)
    }

    fn apply(self, a: u64, b: u64, p: u64) -> Option<u64> {
        Some(match self {
            Op::Add => (a + b) % p,
            Op::Sub => (a + p - b) % p,
            Op::Mul => (a * b) % p,
            Op::Div => {
                if b == 0 {
                    return None;
                }
                (a * pow_mod(b, p - 2, p)) % p
            }
            Op::Quad => (a * a + a * b + b * b) % p,
        })
    }
}

impl std::str::FromStr for Op {
    type Err = Error;
    fn from_str(s: &str) -> Result<Op> {
        Op::ALL
            .into_iter()
            .find(|op| op.name() == s)
            .ok_or_else(|| Error::config("op", s, "expected one of add, sub, mul, div, quad"))
    }
}

/// `base^exp mod p` by squaring (p ≤ 65 521, so products fit in u64); also the
/// discrete-log basis of the analysis uses it.
pub(crate) fn pow_mod(mut base: u64, mut exp: u64, p: u64) -> u64 {
    let mut acc = 1u64;
    base %= p;
    while exp > 0 {
        if exp & 1 == 1 {
            acc = acc * base % p;
        }
        base = base * base % p;
        exp >>= 1;
    }
    acc
}

/// Whether `p` is prime, by trial division (at most √p ≈ 256 divisions for the largest
/// modulus a task accepts, 65 521).
pub fn is_prime(p: usize) -> bool {
    if p < 2 {
        return false;
    }
    let mut d = 2;
    while d * d <= p {
        if p.is_multiple_of(d) {
            return false;
        }
        d += 1;
    }
    true
}

/// Largest p accepted: the p² pairs (three u32 each) then take 0.8 GB. The engine's own
/// memory is O(parameters + tiles), but the pair list is explicit.
pub const MAX_P: usize = 8191;

pub(super) fn build(op: Op, p: usize) -> Result<Task> {
    if p < 2 {
        return Err(Error::config("p", p, "the modulus must be at least 2"));
    }
    if p > MAX_P {
        return Err(Error::config(
            "p",
            p,
            format!("the modulus must be at most {MAX_P}"),
        ));
    }
    if op.needs_prime() && !is_prime(p) {
        return Err(Error::config(
            "p",
            p,
            format!(
                "op '{}' needs a prime modulus (Z_p must be a field)",
                op.name()
            ),
        ));
    }
    let mut pairs = PairSet::default();
    for a in 0..p as u64 {
        for b in 0..p as u64 {
            if let Some(y) = op.apply(a, b, p as u64) {
                pairs.push(a as u32, b as u32, y as u32);
            }
        }
    }
    Task::new(format!("{} mod {p}", op.formula()), p, p, pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_right() {
        let t = build(Op::Add, 5).unwrap();
        assert_eq!(t.len(), 25);
        assert_eq!(t.pairs.label[3 * 5 + 4], 2);
        let d = build(Op::Div, 7).unwrap();
        assert_eq!(d.len(), 42);
        for i in 0..d.len() {
            let (a, b, y) = (
                d.pairs.a[i] as u64,
                d.pairs.b[i] as u64,
                d.pairs.label[i] as u64,
            );
            assert_eq!(y * b % 7, a);
        }
        let s = build(Op::Sub, 6).unwrap();
        assert_eq!(s.pairs.label[6 + 2], 5); // 1 - 2 mod 6
        let q = build(Op::Quad, 4).unwrap();
        assert_eq!(q.pairs.label[4 + 3], (1 + 3 + 9) % 4);
    }

    #[test]
    fn fields_are_required_where_needed() {
        assert!(build(Op::Mul, 9).is_err());
        assert!(build(Op::Div, 1).is_err());
        assert!(build(Op::Add, 9).is_ok());
        assert!(build(Op::Add, 1).is_err());
    }
}
