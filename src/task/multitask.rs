//! Seed 002's multi-task table and its single-task targets.
//!
//! Inputs `x0, x1 < p` stand for the two base-p digits of `n = x0 + x1·p`; target q is
//! `n mod q` for each prime `q < p` (29 of them at p = 113). The table is not symmetric
//! in `x0, x1`. The multi-task version has one head per prime, each head's
//! cross-entropy weighted by `1 / ln q` and the weighted losses **summed** (seed 002,
//! eq. 12.1: `L = Σ_q L_q / ln q`), so every head starts near loss 1 whatever its size
//! and a task with many classes does not drown the others.

use super::{is_prime, Heads, PairSet, Task};
use crate::error::{Error, Result};
use std::sync::Arc;

/// Checks a multi-task setup without building it: p a prime ≥ 3 and, for one target,
/// `target_mod` a prime below p (the errors name `task.p` and `task.target_mod`).
pub fn check_base_p(p: usize, target_mod: Option<usize>) -> Result<()> {
    check_p(p)?;
    match target_mod {
        Some(q) if q >= p || !is_prime(q) => Err(Error::config(
            "task.target_mod",
            q,
            format!("must be a prime below task.p = {p} (one of the multi-task targets)"),
        )),
        _ => Ok(()),
    }
}

/// Checks the base p of the table: a prime ≥ 3 (so at least one prime `q < p` exists).
fn check_p(p: usize) -> Result<()> {
    if p < 3 || !is_prime(p) || p > super::MAX_P {
        return Err(Error::config(
            "task.p",
            p,
            format!(
                "the multi-task table needs a prime p >= 3 (and <= {}): its targets are \
                 (x0 + x1·p) mod q for the primes q < p",
                super::MAX_P
            ),
        ));
    }
    Ok(())
}

/// The primes below `p`, ascending: the moduli of the multi-task targets.
pub fn primes_below(p: usize) -> Vec<usize> {
    (2..p).filter(|&q| is_prime(q)).collect()
}

/// Every pair `(x0, x1)` in row-major order (example `x0·p + x1`), labelled by `label`.
fn table(p: usize, label: impl Fn(u64) -> u32) -> PairSet {
    let mut pairs = PairSet::default();
    for x0 in 0..p as u32 {
        for x1 in 0..p as u32 {
            pairs.push(x0, x1, label(x0 as u64 + x1 as u64 * p as u64));
        }
    }
    pairs
}

/// See [`Task::multitask`].
pub(super) fn build(p: usize) -> Result<Task> {
    check_p(p)?;
    let qs = primes_below(p);
    let heads = Heads::new(
        qs.iter()
            .map(|&q| (format!("mod {q}"), q, 1.0 / (q as f64).ln())),
    )?;
    let n_out = heads.n_out();
    let mut pairs = table(p, |n| n as u32);
    pairs.heads = Some(Arc::new(heads));
    Task::new(
        format!("(x0+x1*{p}) mod q, {} primes q < {p}", qs.len()),
        p,
        n_out,
        pairs,
    )
}

/// See [`Task::mod_target`].
pub(super) fn build_single(p: usize, q: usize) -> Result<Task> {
    check_base_p(p, Some(q))?;
    let pairs = table(p, |n| (n % q as u64) as u32);
    Task::new(format!("(x0+x1*{p}) mod {q}"), p, q, pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multitask_heads_are_the_primes_with_weight_one_over_ln_q() {
        let t = Task::multitask(11).unwrap();
        let heads = t.heads().unwrap();
        let sizes: Vec<usize> = heads.heads().iter().map(|h| h.size).collect();
        assert_eq!(sizes, [2, 3, 5, 7]);
        assert_eq!(t.n_out, 17);
        assert_eq!(heads.heads()[2].weight, 1.0 / 5f64.ln());
        // example x0·p + x1 is (x0, x1) with integer x0 + x1·p.
        let i = 4 * 11 + 9;
        assert_eq!((t.pairs.a[i], t.pairs.b[i]), (4, 9));
        assert_eq!(heads.class(3, t.pairs.label[i]), (4 + 9 * 11) % 7);
    }

    #[test]
    fn single_target_matches_the_head() {
        let multi = Task::multitask(7).unwrap();
        let single = Task::mod_target(7, 5).unwrap();
        assert_eq!(single.n_out, 5);
        let heads = multi.heads().unwrap();
        for i in 0..single.len() {
            assert_eq!(
                single.pairs.label[i] as usize,
                heads.class(2, multi.pairs.label[i])
            );
        }
    }

    #[test]
    fn bad_p_and_q_name_the_key() {
        for p in [2, 9] {
            let e = Task::multitask(p).unwrap_err().to_string();
            assert!(e.contains(&format!("task.p = {p}")), "{e}");
        }
        for q in [4, 7, 11] {
            let e = Task::mod_target(7, q).unwrap_err().to_string();
            assert!(e.contains(&format!("task.target_mod = {q}")), "{e}");
        }
    }
}
