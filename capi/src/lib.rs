//! kiln's C API: `libkiln.a` / `libkiln.so` and `include/kiln.h`, for
//! mobile apps (Android NDK, iOS) and C/C++ board software.
//!
//! Every function is a thin layer over [`kiln_runtime`]: it checks the
//! caller's pointers and sizes (module `args`), runs the runtime call inside a
//! guard that turns errors into a [`KilnStatus`] plus a thread-local message
//! and catches panics (module `status`), and never lets a panic unwind into C.
//!
//! Handles: a `kiln_model` shares its model through an `Arc` with the
//! sessions made from it, so models and sessions may be freed in any order
//! (see [`KilnSession`]). A model may be used from several threads at once;
//! a session by one thread at a time.
//!
//! Panics: each entry point catches them and returns `KILN_ERR_INTERNAL`,
//! which needs unwinding; a build with `panic = "abort"` would abort the host
//! app instead, so it is refused at compile time.
//!
//! `include/kiln.h` is written by hand; `tests/header.rs` checks that it
//! declares exactly the functions exported here.
#![warn(missing_docs)]
// The workspace lint guards the no_std runtime; this layer needs std
// (catch_unwind, thread-locals, files).
#![allow(clippy::std_instead_of_core)]

#[cfg(panic = "abort")]
compile_error!(
    "kiln-capi must be built with panic = \"unwind\": its entry points turn a panic into KILN_ERR_INTERNAL \
     instead of aborting the host application"
);

mod args;
mod info;
mod model;
mod session;
mod status;

pub use info::{
    kiln_model_input_count, kiln_model_input_info, kiln_model_output_count, kiln_model_output_info, KilnDtype,
    KilnTensorInfo,
};
pub use model::{kiln_model_arena_size, kiln_model_free, kiln_model_open, kiln_model_open_memory, KilnModel};
pub use session::{
    kiln_session_create, kiln_session_create_with_arena, kiln_session_free, kiln_session_output_f32,
    kiln_session_output_i8, kiln_session_run, kiln_session_set_input_f32, kiln_session_set_input_i8, KilnSession,
};
pub use status::{kiln_last_error, KilnStatus};
