//! `pairguard devices`: the CPU's dot products for `--precision bf16` and
//! `int8`, the wgpu adapters, and what `--device auto` picks.

use pairguard_model::DeviceChoice;

pub fn exec() -> anyhow::Result<()> {
    let dots = pairguard_clip::host::DotProducts::detect();
    let yes = |b: bool| if b { "yes" } else { "no (widened: correct, not faster)" };
    println!("cpu: {}", cpu_model());
    println!("cpu bf16 dot products (AVX-512 BF16), for --precision bf16: {}", yes(dots.bf16));
    println!("cpu int8 dot products (AVX-512 VNNI or AVX-VNNI), for --precision int8: {}", yes(dots.int8));
    let adapters = pairguard_model::device::wgpu_adapters();
    if adapters.is_empty() {
        println!("wgpu adapters: none");
    }
    for (name, kind, backend) in adapters {
        println!("wgpu adapter: {name} ({kind}, {backend})");
    }
    let sel = pairguard_model::device::select(DeviceChoice::Auto)?;
    println!("auto picks: {}", sel.description);
    Ok(())
}

/// The CPU's model name as the kernel reports it (`lscpu`'s "Model name").
fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| t.lines().find(|l| l.starts_with("model name")).and_then(|l| l.split(':').nth(1)).map(|m| m.trim().to_string()))
        .unwrap_or_else(|| "unknown".into())
}
