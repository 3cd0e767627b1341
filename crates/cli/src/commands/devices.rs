//! `pairguard devices`: the CPU's dot products for `--precision bf16` and
//! `int8`, the wgpu adapters, and what `--device auto` picks.

use pairguard_model::DeviceChoice;

pub fn exec() -> anyhow::Result<()> {
    let dots = pairguard_clip::host::DotProducts::detect();
    let yes = |b: bool| if b { "yes" } else { "no (widened: correct, not faster)" };
    println!("cpu: {}", pairguard_clip::host::cpu_name());
    println!("cpu bf16 dot products (AVX-512 BF16), for --precision bf16: {}", yes(dots.bf16));
    println!("cpu int8 dot products (AVX-512 VNNI), for --precision int8: {}", yes(dots.int8));
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
