//! Every scalar kernel against an independent f64 reference: the int8
//! inputs are dequantized, the operator is computed in f64 from its
//! mathematical definition (ONNX semantics), and the result is quantized
//! with round-half-even and clamping. Every output element must be within 1
//! LSB of it (f32 arithmetic can move a value that sits near a .5 boundary
//! by one step), over random shapes and parameters drawn by proptest, and
//! the cases must be meaningful: output scales are calibrated on the
//! reference, as a converter would, and few outputs may saturate.
//!
//! `hand` adds small cases whose int8 outputs are worked out by hand.
//! `float` checks the float kernels against f64 with tolerances suited to
//! f32 instead (their outputs are not quantized).

mod conv;
mod elementwise;
mod float;
mod hand;
mod layout;
mod normalize;
mod pool;
mod reference;
mod resize;
