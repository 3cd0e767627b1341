//! What the benchmarks share: running a Python peer and taking medians.

/// Runs `benchmarks/<script>` with `args` under `python`; its standard
/// output, or the last line of its error output.
pub fn run(python: &str, script: &str, args: &[String]) -> Result<String, String> {
    let path = format!("{}/../../benchmarks/{script}", env!("CARGO_MANIFEST_DIR"));
    let out = std::process::Command::new(python).arg(&path).args(args).output().map_err(|e| format!("{python}: {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or("failed").to_string());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The value of a `name=value` line of a peer's output.
pub fn field(text: &str, name: &str) -> Result<f64, String> {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix('=')))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .ok_or_else(|| format!("no {name}= line in: {text}"))
}

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 }
}
