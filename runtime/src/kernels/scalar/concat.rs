//! Concatenation.

use super::requantize;
use crate::kernels::{In, Out};

/// How concatenation places one input's elements: int8 ones are
/// requantized to the output's quantization, f32 ones copied.
pub trait ConcatElement: Copy {
    /// Writes `x`'s elements into `y`, of the same length.
    fn place(x: In<'_, Self>, y: Out<'_, Self>);
}

impl ConcatElement for i8 {
    fn place(x: In<'_, i8>, y: Out<'_, i8>) {
        requantize(x, y);
    }
}

impl ConcatElement for f32 {
    fn place(x: In<'_, f32>, y: Out<'_, f32>) {
        y.data.copy_from_slice(x.data);
    }
}

/// Writes one input of a concatenation along `axis` into its place in `y`
/// ([`ConcatElement::place`]); `offset` is where along `axis` it starts.
/// The model calls this once per input.
pub fn concat_part<T: ConcatElement>(x: In<'_, T>, axis: usize, offset: usize, y: Out<'_, T>) {
    let xd = x.shape.dims();
    let outer: usize = xd[..axis].iter().product();
    let inner: usize = xd[axis + 1..].iter().product();
    let chunk = xd[axis] * inner;
    let y_chunk = y.shape.dims()[axis] * inner;
    for i in 0..outer {
        let src = In { data: &x.data[i * chunk..][..chunk], ..x };
        let dst = &mut y.data[i * y_chunk + offset * inner..][..chunk];
        T::place(src, Out { data: dst, shape: x.shape, quant: y.quant });
    }
}
