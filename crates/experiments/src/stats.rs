//! Summary statistics over seeds: mean and a two-sided 95% Student-t
//! confidence interval for the mean.

use serde::Serialize;

/// Two-sided 97.5% quantiles of Student's t for 1..=30 degrees of freedom.
const T975: [f64; 30] = [
    12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281, 2.2010, 2.1788, 2.1604, 2.1448,
    2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860, 2.0796, 2.0739, 2.0687, 2.0639, 2.0595, 2.0555, 2.0518, 2.0484,
    2.0452, 2.0423,
];

/// t quantile for `df` degrees of freedom (normal approximation with a
/// first-order correction beyond the table).
pub fn t975(df: usize) -> f64 {
    match df {
        0 => f64::NAN,
        1..=30 => T975[df - 1],
        _ => 1.959964 + 2.37 / df as f64,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_interval() {
        // mean 3, sd sqrt(2.5), se sqrt(0.5), t(4) = 2.7764
        let m = mean_ci(&[1.0, 2.0, 3.0, 4.0, 5.0]);
        assert_eq!(m.n, 5);
        assert!((m.mean - 3.0).abs() < 1e-12);
        assert!((m.sd - 2.5f64.sqrt()).abs() < 1e-12);
        assert!((m.ci_low - (3.0 - 2.7764 * 0.5f64.sqrt())).abs() < 1e-9, "{m:?}");
        assert!((m.ci_high - 4.963_217).abs() < 1e-5, "{m:?}");
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
