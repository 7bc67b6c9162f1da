//! The scalar kernels: the specification of every operator's arithmetic.

mod concat;
mod conv;
mod elementwise;
pub mod float;
mod layout;
mod normalize;
mod pool;
mod resize;

pub use concat::{concat_part, ConcatElement};
pub use conv::{conv2d, fully_connected};
pub use elementwise::{add, clamp, dequantize, lut, max, min, mul, prelu, quantize_f32, requantize, sub};
pub use layout::{pad, slice, transpose, zero_insert};
pub use normalize::{l2_norm, softmax};
pub use pool::{avg_pool, global_avg_pool, max_pool, reduce};
pub use resize::resize;
