//! What a conversion holds in memory, checked against what the machine has
//! before any work: a model whose input shape makes its activations larger
//! than memory must fail with a message, not be killed after minutes.

use anyhow::{ensure, Result};

use crate::ir::Graph;

/// Bytes of memory available to new allocations (Linux's `MemAvailable`),
/// where the system says.
pub fn available() -> Option<usize> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find_map(|l| l.strip_prefix("MemAvailable:"))?;
    let kib: usize = line.trim().strip_suffix("kB")?.trim().parse().ok()?;
    kib.checked_mul(1024)
}

/// Bytes of every tensor of `graph` in f32: what calibration holds for one
/// input (it keeps every tensor's values to take their ranges), and a lower
/// bound on what tract's float run needs.
fn activation_bytes(graph: &Graph) -> usize {
    graph.tensors.iter().try_fold(0usize, |sum, t| sum.checked_add(f32_bytes(&t.shape)?)).unwrap_or(usize::MAX)
}

/// Bytes of an f32 tensor of `shape`, `None` past the address space.
fn f32_bytes(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(4usize, |n, &d| n.checked_mul(d))
}

/// Fails if converting `graph` on `samples` calibration inputs of
/// `input_shape` needs more memory than the machine has available, naming
/// both and what to do.
pub fn check_fits(graph: &Graph, input_shape: &[usize], samples: usize) -> Result<()> {
    let inputs = f32_bytes(input_shape).and_then(|b| b.checked_mul(samples)).unwrap_or(usize::MAX);
    let needed = activation_bytes(graph).saturating_add(inputs);
    let Some(available) = available() else {
        return Ok(());
    };
    ensure!(
        needed <= available,
        "at input shape {input_shape:?}, {samples} calibration inputs and the model's activations take {needed} \
         bytes in float, more than the {available} bytes of memory available: give a smaller --input-shape"
    );
    Ok(())
}
