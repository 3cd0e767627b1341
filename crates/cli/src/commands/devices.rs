//! `pairguard devices`: the wgpu adapters, and what `--device auto` picks.

use pairguard_model::DeviceChoice;

pub fn exec() -> anyhow::Result<()> {
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
