//! Choosing where tensors live. wgpu is preferred when a real GPU adapter
//! exists; a software adapter (llvmpipe, lavapipe) is about 60x slower than
//! the CPU backend, so `auto` treats it as no GPU. The choice is always
//! reported, because silent fallbacks make benchmark figures meaningless.

use burn::tensor::Device;

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
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
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "auto" => Ok(DeviceChoice::Auto),
            "cpu" => Ok(DeviceChoice::Cpu),
            "wgpu" => Ok(DeviceChoice::Wgpu),
            _ => Err(Error::UnknownName { kind: "device", name: s.into(), known: "auto, cpu, wgpu".into() }),
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
    Selected { device: Device::flex(), description: format!("cpu (burn flex backend{reason})"), is_wgpu: false }
}

pub fn select(choice: DeviceChoice) -> Result<Selected> {
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
fn wgpu_device(allow_software: bool) -> Result<Selected> {
    let adapters = wgpu_adapters();
    if adapters.is_empty() {
        return Err(Error::Device("no wgpu adapter found".into()));
    }
    let hardware = adapters.iter().find(|(_, kind, _)| kind != "Cpu");
    let chosen = match (hardware, allow_software) {
        (Some(a), _) => a,
        (None, true) => &adapters[0],
        (None, false) => {
            return Err(Error::Device(format!("wgpu adapter {:?} is a software renderer, not a GPU", adapters[0].0)));
        }
    };
    let device = Device::wgpu(burn::tensor::DeviceKind::DefaultDevice);
    Ok(Selected { device, description: format!("wgpu ({}, {}, {})", chosen.0, chosen.1, chosen.2), is_wgpu: true })
}

#[cfg(not(feature = "wgpu"))]
fn wgpu_device(_allow_software: bool) -> Result<Selected> {
    Err(Error::Device("this build has no wgpu support (feature `wgpu`)".into()))
}
