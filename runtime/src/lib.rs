//! kiln's runtime: reads a `.kiln` file and runs it with int8 kernels.
//!
//! ```no_run
//! # fn main() -> Result<(), kiln_runtime::Error> {
//! use kiln_runtime::{Model, Session};
//! let model = Model::open("sface.kiln")?;
//! let mut session = Session::new(&model)?;
//! let pixels = vec![0.0f32; 3 * 112 * 112];
//! session.set_input_f32(0, &pixels)?;
//! session.run();
//! let mut embedding = [0.0f32; 128];
//! session.output_f32(0, &mut embedding)?;
//! # Ok(()) }
//! ```
//!
//! The file is validated once, when it is loaded ([`Model::from_bytes`],
//! [`Model::open`]); after that, [`Session::run`] cannot fail on account of
//! the file and performs no heap allocation.
//!
//! # `no_std`
//!
//! Without the default `std` feature the crate is `#![no_std]` but needs
//! `alloc`: a [`Model`] decodes its small operator and tensor tables into
//! vectors at load (a few KiB; weights are never copied). Inference itself
//! needs no allocator: give [`Session::with_arena`] a buffer of
//! [`Model::arena_size`] bytes.
#![cfg_attr(not(feature = "std"), no_std)]
#![warn(missing_docs)]

extern crate alloc;

#[cfg(target_endian = "big")]
compile_error!("kiln-runtime reads its little-endian weights in place and supports little-endian targets only");

mod error;
pub mod format;
pub mod kernels;
mod model;
pub mod ops;
pub mod quant;
mod session;

pub use error::Error;
pub use format::{DType, Quant, Shape};
pub use kernels::{Isa, Kernels};
pub use model::{Limits, Model, ModelInfo, TensorInfo};
pub use ops::OpKind;
pub use session::{Session, SessionOptions};
