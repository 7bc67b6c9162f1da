//! Concatenation.

use super::requantize;
use crate::kernels::{QIn, QOut};

/// Writes one input of a concatenation along `axis` into its place in `y`,
/// requantized to `y`'s quantization; `offset` is where along `axis` it
/// starts. The model calls this once per input.
pub fn concat_part(x: QIn<'_>, axis: usize, offset: usize, y: QOut<'_>) {
    let xd = x.shape.dims();
    let outer: usize = xd[..axis].iter().product();
    let inner: usize = xd[axis + 1..].iter().product();
    let chunk = xd[axis] * inner;
    let y_chunk = y.shape.dims()[axis] * inner;
    for i in 0..outer {
        let src = QIn { data: &x.data[i * chunk..][..chunk], ..x };
        let dst = &mut y.data[i * y_chunk + offset * inner..][..chunk];
        requantize(src, QOut { data: dst, shape: x.shape, quant: y.quant });
    }
}
