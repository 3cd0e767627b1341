//! Choosing where tensors live. wgpu is preferred when a real GPU adapter
//! exists; a software adapter (llvmpipe, lavapipe) is about 60x slower than
//! the CPU backend, so `auto` treats it as no GPU. The choice is always
//! reported, because silent fallbacks make benchmark figures meaningless.

use burn::tensor::Device;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceChoice {
    /// A hardware wgpu adapter if one exists, else the CPU backend.
    #[default]
    Auto,
    /// burn's pure-Rust CPU backend (flex).
    Cpu,
    /// wgpu on whatever adapter is available, software ones included.
    Wgpu,
}

impl std::str::FromStr for DeviceChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(DeviceChoice::Auto),
            "cpu" | "flex" => Ok(DeviceChoice::Cpu),
            "wgpu" | "gpu" => Ok(DeviceChoice::Wgpu),
            _ => Err(format!("unknown device {s:?} (auto, cpu or wgpu)")),
        }
    }
}

/// A resolved device and a sentence saying what it is.
#[derive(Debug, Clone)]
pub struct Selected {
    pub device: Device,
    pub description: String,
    pub is_wgpu: bool,
}

/// What wgpu can see: (adapter name, device type, backend) for each adapter.
#[cfg(feature = "wgpu")]
pub fn wgpu_adapters() -> Vec<(String, String, String)> {
    use burn::tensor::wgpu::wgpu;
    let instance = wgpu::Instance::default();
    pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()))
        .into_iter()
        .map(|a| {
            let info = a.get_info();
            (info.name, format!("{:?}", info.device_type), format!("{:?}", info.backend))
        })
        .collect()
}

#[cfg(not(feature = "wgpu"))]
pub fn wgpu_adapters() -> Vec<(String, String, String)> {
    Vec::new()
}

fn cpu(reason: &str) -> Selected {
    Selected {
        device: Device::flex(),
        description: format!("cpu (burn flex backend{reason})"),
        is_wgpu: false,
    }
}

pub fn select(choice: DeviceChoice) -> Result<Selected, String> {
    match choice {
        DeviceChoice::Cpu => Ok(cpu("")),
        DeviceChoice::Wgpu => wgpu_device(true),
        DeviceChoice::Auto => match wgpu_device(false) {
            Ok(sel) => Ok(sel),
            Err(why) => Ok(cpu(&format!("; {why}"))),
        },
    }
}

#[cfg(feature = "wgpu")]
fn wgpu_device(allow_software: bool) -> Result<Selected, String> {
    let adapters = wgpu_adapters();
    if adapters.is_empty() {
        return Err("no wgpu adapter found".into());
    }
    let hardware = adapters.iter().find(|(_, kind, _)| kind != "Cpu");
    let chosen = match (hardware, allow_software) {
        (Some(a), _) => a,
        (None, true) => &adapters[0],
        (None, false) => {
            return Err(format!("wgpu adapter {:?} is a software renderer, not a GPU", adapters[0].0));
        }
    };
    let device = Device::wgpu(burn::tensor::DeviceKind::DefaultDevice);
    Ok(Selected {
        device,
        description: format!("wgpu ({}, {}, {})", chosen.0, chosen.1, chosen.2),
        is_wgpu: true,
    })
}

#[cfg(not(feature = "wgpu"))]
fn wgpu_device(_allow_software: bool) -> Result<Selected, String> {
    Err("this build has no wgpu support (feature `wgpu`)".into())
}
