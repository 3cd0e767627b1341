//! Summary statistics over seeds: mean and a two-sided 95% Student-t
//! confidence interval for the mean.

use serde::Serialize;

/// The 97.5% quantile of Student's t with `df` degrees of freedom.
pub fn t975(df: usize) -> f64 {
    use statrs::distribution::{ContinuousCDF, StudentsT};
    match StudentsT::new(0.0, 1.0, df as f64) {
        Ok(t) => t.inverse_cdf(0.975),
        Err(_) => f64::NAN,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MeanCi {
    pub n: usize,
    pub mean: f64,
    pub sd: f64,
    pub ci_low: f64,
    pub ci_high: f64,
}

/// Mean and 95% CI of finite values (NaNs, e.g. AUROC on a one-class set,
/// are left out and so lower `n`).
pub fn mean_ci(values: &[f64]) -> MeanCi {
    let v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    let n = v.len();
    if n == 0 {
        return MeanCi { n, mean: f64::NAN, sd: f64::NAN, ci_low: f64::NAN, ci_high: f64::NAN };
    }
    let mean = v.iter().sum::<f64>() / n as f64;
    if n == 1 {
        return MeanCi { n, mean, sd: f64::NAN, ci_low: f64::NAN, ci_high: f64::NAN };
    }
    let sd = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt();
    let half = t975(n - 1) * sd / (n as f64).sqrt();
    MeanCi { n, mean, sd, ci_low: mean - half, ci_high: mean + half }
}

/// Wilson's 95% score interval for a proportion of `k` in `n` (NaN for
/// n = 0): unlike the normal approximation it stays inside [0, 1] and is
/// not empty at 0 or n, which is where robust accuracy often lies.
pub fn wilson(k: usize, n: usize) -> (f64, f64) {
    if n == 0 {
        return (f64::NAN, f64::NAN);
    }
    let z = 1.959_963_984_540_054;
    let (n, p) = (n as f64, k as f64 / n as f64);
    let denom = 1.0 + z * z / n;
    let centre = (p + z * z / (2.0 * n)) / denom;
    let half = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt() / denom;
    // At 0 and n the bound is 0 or 1 exactly; rounding would leave it a hair off.
    let lo = if k == 0 { 0.0 } else { (centre - half).max(0.0) };
    let hi = if k as f64 == n { 1.0 } else { (centre + half).min(1.0) };
    (lo, hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_matches_known_intervals() {
        // The closed form evaluated independently in Python (f64); 8 of 10 is the textbook example.
        for (k, n, lo, hi) in [(8, 10, 0.490_162, 0.943_318), (0, 20, 0.0, 0.161_125), (50, 50, 0.928_651, 1.0), (1, 3, 0.061_490, 0.792_340)] {
            let (l, h) = wilson(k, n);
            assert!((l - lo).abs() < 1e-5 && (h - hi).abs() < 1e-5, "wilson({k}, {n}) = ({l}, {h}), expected ({lo}, {hi})");
        }
        assert!(wilson(0, 0).0.is_nan());
    }

    #[test]
    fn known_interval() {
        // mean 3, sd sqrt(2.5), se sqrt(0.5), t(4) = 2.7764451
        let m = mean_ci(&[1.0, 2.0, 3.0, 4.0, 5.0]);
        assert_eq!(m.n, 5);
        assert!((m.mean - 3.0).abs() < 1e-12);
        assert!((m.sd - 2.5f64.sqrt()).abs() < 1e-12);
        assert!((m.ci_low - (3.0 - 2.776_445_1 * 0.5f64.sqrt())).abs() < 1e-6, "{m:?}");
        assert!((m.ci_high - 4.963_243).abs() < 1e-5, "{m:?}");
    }

    #[test]
    fn t_quantiles_match_tables() {
        for (df, q) in [(1, 12.7062), (4, 2.7764), (9, 2.2622), (30, 2.0423), (120, 1.9799)] {
            assert!((t975(df) - q).abs() < 1e-4, "t975({df}) = {}", t975(df));
        }
        assert!(t975(0).is_nan());
    }

    #[test]
    fn degenerate_inputs() {
        assert!(mean_ci(&[]).mean.is_nan());
        let one = mean_ci(&[0.7, f64::NAN]);
        assert_eq!((one.n, one.mean), (1, 0.7));
        assert!(one.ci_low.is_nan());
        let same = mean_ci(&[0.5; 4]);
        assert_eq!((same.ci_low, same.ci_high), (0.5, 0.5));
    }
}
