//! `--device cpu|gpu`: where `train`, `colorize` and `eval` run.

use anyhow::Result;
use burn::tensor::Device;

/// The compute device, as the command line names it.
#[derive(Clone, Copy, Default, clap::ValueEnum)]
pub enum DeviceArg {
    /// burn's flex backend on the CPU (always available).
    #[default]
    Cpu,
    /// The default GPU through burn's wgpu backend (Vulkan, Metal or DX12); needs a build with
    /// `--features wgpu`.
    Gpu,
}

impl DeviceArg {
    /// The burn device (without autodiff).
    pub fn device(self) -> Result<Device> {
        match self {
            DeviceArg::Cpu => Ok(Device::flex()),
            DeviceArg::Gpu => gpu(),
        }
    }
}

#[cfg(feature = "wgpu")]
fn gpu() -> Result<Device> {
    Ok(Device::wgpu(burn::tensor::DeviceKind::DefaultDevice))
}

#[cfg(not(feature = "wgpu"))]
fn gpu() -> Result<Device> {
    anyhow::bail!(
        "--device gpu: this rechroma was built without GPU support; rebuild it with \
         `cargo build --release -p rechroma-cli --features wgpu`"
    )
}
