//! What the benchmarks share: one setup for both sides, running a Python
//! peer under it, and medians with their range.

// Each benchmark uses part of this module.
#![allow(dead_code)]

/// glibc malloc told to keep what it frees: large buffers (under 32 MiB)
/// come from the heap instead of fresh mappings, and the heap is never
/// trimmed. pairguard's mimalloc keeps freed pages too (crates/alloc); with
/// glibc's defaults each 20 MB buffer of the encoder faults its pages in
/// anew, which alone moved pairguard from 15.7 to 12.2 images/s.
pub const GLIBC_TUNABLES: &str = "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=68719476736:glibc.malloc.top_pad=67108864";

/// How both sides of a benchmark run, printed with every figure.
#[derive(Debug, Clone, Copy)]
pub struct Setup {
    /// Threads on both sides: pairguard's rayon pool; the peer's torch,
    /// OpenMP and BLAS threads.
    pub threads: usize,
}

impl Setup {
    /// Pins pairguard's threads to `threads` (default: every core); call
    /// before any parallel work.
    pub fn pin(threads: Option<usize>) -> Setup {
        let threads = threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        rayon::ThreadPoolBuilder::new().num_threads(threads).build_global().expect("the global thread pool is built first, once");
        Setup { threads }
    }

    /// `--threads N` from the arguments, then [`Setup::pin`].
    pub fn from_args(args: &[String]) -> Setup {
        let threads = args
            .iter()
            .position(|a| a == "--threads")
            .and_then(|i| args.get(i + 1))
            .map(|t| t.parse::<usize>().ok().filter(|&t| t > 0).unwrap_or_else(|| panic!("--threads takes a positive number, not {t:?}")));
        Setup::pin(threads)
    }

    pub fn describe(&self) -> String {
        format!(
            "CPU: {} ({} cores); threads: {} on both sides (pairguard's rayon pool; the peer's torch.set_num_threads, \
             OMP_NUM_THREADS, MKL_NUM_THREADS, OPENBLAS_NUM_THREADS); allocators: pairguard mimalloc keeping freed pages, \
             the peer glibc malloc keeping them (GLIBC_TUNABLES={GLIBC_TUNABLES})",
            pairguard_clip::host::cpu_name(),
            std::thread::available_parallelism().map_or(1, |n| n.get()),
            self.threads
        )
    }

    /// Runs `benchmarks/<script>` with `args` under `python`, with this
    /// setup; its standard output, or the last line of its error output.
    pub fn run(&self, python: &str, script: &str, args: &[String]) -> Result<String, String> {
        let path = format!("{}/../../benchmarks/{script}", env!("CARGO_MANIFEST_DIR"));
        let t = self.threads.to_string();
        let out = std::process::Command::new(python)
            .arg(&path)
            .args(args)
            .env("PAIRGUARD_THREADS", &t)
            .env("OMP_NUM_THREADS", &t)
            .env("MKL_NUM_THREADS", &t)
            .env("OPENBLAS_NUM_THREADS", &t)
            .env("GLIBC_TUNABLES", GLIBC_TUNABLES)
            .output()
            .map_err(|e| format!("{python}: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or("failed").to_string());
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
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

/// "median [least, most]" of per-round figures.
pub fn spread(v: &[f64], digits: usize) -> String {
    let (lo, hi) = v.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| (a.min(x), b.max(x)));
    format!("{:.digits$} [{lo:.digits$}, {hi:.digits$}]", median(v.to_vec()))
}

/// The value after `--flag`, parsed; None when the flag is absent.
pub fn option<T: std::str::FromStr>(args: &[String], flag: &str) -> Option<T> {
    let i = args.iter().position(|a| a == flag)?;
    let v = args.get(i + 1).unwrap_or_else(|| panic!("{flag} takes a value"));
    Some(v.parse().unwrap_or_else(|_| panic!("{flag}: cannot read {v:?}")))
}

/// The numbers among the arguments that are not the value of one of
/// `flags` (a benchmark's positional batch sizes and counts).
pub fn positional(args: &[String], flags: &[&str]) -> Vec<usize> {
    args.iter().enumerate().filter(|(i, _)| *i == 0 || !flags.contains(&args[i - 1].as_str())).filter_map(|(_, a)| a.parse().ok()).collect()
}

/// An encoder of `model` (a tower with random weights) under a stated
/// identity: unit-length embeddings, CLIP's preprocessing, f32.
pub fn random_encoder(
    name: &str,
    config: pairguard_clip::VisionConfig,
    model: pairguard_clip::ClipVisionModelWithProjection,
    device: &burn::tensor::Device,
) -> pairguard_clip::ImageEncoder {
    let id = pairguard_data::EncoderId {
        model: name.into(),
        revision: None,
        weights_sha256: "random".into(),
        architecture: serde_json::to_string(&config).expect("config serialises"),
        preprocess: "clip".into(),
        dim: config.projection_dim,
        normalized: true,
        precision: Default::default(),
    };
    pairguard_clip::ImageEncoder::from_model(config, model, id, pairguard_clip::Layout::HuggingFace, device)
}
