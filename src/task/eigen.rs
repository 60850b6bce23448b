//! Eigen-decomposition of a small dense symmetric matrix by cyclic Jacobi rotations.
//!
//! Why hand-written: the representation analysis ([`super::irreps`]) needs one symmetric
//! eigen-decomposition of at most 128×128, and the crate has no LAPACK binding; Jacobi is
//! short, needs no pivoting decisions and gives orthonormal eigenvectors to rounding.

/// Eigenvalues (ascending) and orthonormal eigenvectors of the symmetric `n×n` row-major
/// matrix `a`: `vectors[j]` belongs to `values[j]`. Only the symmetric part is read.
pub fn symmetric_eigen(a: &[f64], n: usize) -> (Vec<f64>, Vec<Vec<f64>>) {
    assert_eq!(a.len(), n * n, "matrix is not n×n");
    let mut m: Vec<f64> = (0..n * n)
        .map(|k| 0.5 * (a[k] + a[(k % n) * n + k / n]))
        .collect();
    // v[i*n + j]: component i of eigenvector j.
    let mut v = vec![0.0; n * n];
    for i in 0..n {
        v[i * n + i] = 1.0;
    }
    let scale = m
        .iter()
        .map(|x| x * x)
        .sum::<f64>()
        .sqrt()
        .max(f64::MIN_POSITIVE);
    for _sweep in 0..100 {
        let off: f64 = (0..n)
            .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| m[i * n + j] * m[i * n + j])
            .sum::<f64>()
            .sqrt();
        if off <= 1e-15 * scale {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = m[p * n + q];
                if apq.abs() <= 1e-300 {
                    continue;
                }
                let theta = (m[q * n + q] - m[p * n + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let (mkp, mkq) = (m[k * n + p], m[k * n + q]);
                    m[k * n + p] = c * mkp - s * mkq;
                    m[k * n + q] = s * mkp + c * mkq;
                }
                for k in 0..n {
                    let (mpk, mqk) = (m[p * n + k], m[q * n + k]);
                    m[p * n + k] = c * mpk - s * mqk;
                    m[q * n + k] = s * mpk + c * mqk;
                }
                for k in 0..n {
                    let (vkp, vkq) = (v[k * n + p], v[k * n + q]);
                    v[k * n + p] = c * vkp - s * vkq;
                    v[k * n + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| m[i * n + i].total_cmp(&m[j * n + j]));
    let values = order.iter().map(|&j| m[j * n + j]).collect();
    let vectors = order
        .iter()
        .map(|&j| (0..n).map(|i| v[i * n + j]).collect())
        .collect();
    (values, vectors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decomposes_a_random_symmetric_matrix() {
        let n = 9;
        let mut a = vec![0.0; n * n];
        let mut x = 0.3f64;
        for i in 0..n {
            for j in 0..=i {
                x = (x * 7919.0 + 0.123).fract() - 0.5;
                a[i * n + j] = x;
                a[j * n + i] = x;
            }
        }
        let (values, vectors) = symmetric_eigen(&a, n);
        assert!(values.windows(2).all(|w| w[0] <= w[1]));
        for (lam, v) in values.iter().zip(&vectors) {
            for i in 0..n {
                let av: f64 = (0..n).map(|j| a[i * n + j] * v[j]).sum();
                assert!((av - lam * v[i]).abs() < 1e-12, "A v = λ v");
            }
        }
        for (i, vi) in vectors.iter().enumerate() {
            for (j, vj) in vectors.iter().enumerate() {
                let dot: f64 = vi.iter().zip(vj).map(|(x, y)| x * y).sum();
                let want = if i == j { 1.0 } else { 0.0 };
                assert!((dot - want).abs() < 1e-12, "orthonormal");
            }
        }
        // A known spectrum: diag(3, 1, 2) rotated stays {1, 2, 3}.
        let (values, _) = symmetric_eigen(&[2.0, 1.0, 0.0, 1.0, 2.0, 0.0, 0.0, 0.0, 2.0], 3);
        for (got, want) in values.iter().zip([1.0, 2.0, 3.0]) {
            assert!((got - want).abs() < 1e-14);
        }
    }
}
