//! `kiln_session`: an arena and kernels for one model; set inputs, run,
//! read outputs.

use std::ptr;
use std::sync::Arc;

use kiln_runtime::{Error, Model, Session, SessionOptions};

use crate::args;
use crate::model::{KilnModel, Loaded};
use crate::status::{guard, Failure, KilnStatus};

/// The opaque `kiln_session`.
///
/// A runtime [`Session<'m>`] borrows its `Model<'m>`, and C has no
/// lifetimes. So the handle holds its own clone of the model's [`Arc`] and
/// the session borrows from that heap allocation, which never moves and
/// outlives the session: fields drop in declaration order, `session` first.
/// The `'static` below is the one claim the compiler cannot check; nothing
/// borrowed from the session leaves this module with it. Freeing the model
/// handle before its sessions is therefore safe, and C callers need not
/// track the order.
pub struct KilnSession {
    session: Session<'static>,
    _model: Arc<Loaded>,
}

/// kiln.h promises that a session may move between threads (used by one at a time).
const _: fn() = || {
    fn movable_across_threads<T: Send>() {}
    movable_across_threads::<KilnSession>();
};

/// Makes a session over `arena`, or over a heap arena when it is `None`.
///
/// # Safety
/// `model` as [`args::handle`].
unsafe fn create(
    model: *const KilnModel,
    arena: Option<&'static mut [u8]>,
    out: &mut *mut KilnSession,
) -> Result<(), Failure> {
    // SAFETY: passed on to the caller.
    let loaded = Arc::clone(&unsafe { args::handle(model, "model") }?.loaded);
    // SAFETY: the model lives in the Arc's heap allocation, which the handle
    // below keeps alive and unmoved for as long as the session exists (see
    // KilnSession), and nothing ever mutates it.
    let model: &'static Model<'static> = unsafe { &(*Arc::as_ptr(&loaded)).model };
    let options = SessionOptions::from_env()?;
    let session = match arena {
        None => Session::with_options(model, options)?,
        Some(arena) => Session::with_arena_options(model, arena, options)?,
    };
    *out = Box::into_raw(Box::new(KilnSession { session, _model: loaded }));
    Ok(())
}

/// A session with an arena on the heap, of the model's arena size. The
/// kernel level comes from the environment variable `KILN_ISA` if set.
///
/// # Safety
/// `model` is NULL or a live handle; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn kiln_session_create(model: *const KilnModel, out: *mut *mut KilnSession) -> KilnStatus {
    guard(|| {
        // SAFETY: the caller's contract above.
        let out = unsafe { args::out(out, ptr::null_mut(), "out (the session handle's address)") }?;
        // SAFETY: the caller's contract above.
        unsafe { create(model, None, out) }
    })
}

/// A session over the caller's arena: no heap for activations.
///
/// # Safety
/// `model` is NULL or a live handle; `out` is NULL or writable; `arena` is
/// NULL or `arena_size` bytes that the caller leaves alone, and keeps
/// allocated, until the session is freed.
#[no_mangle]
pub unsafe extern "C" fn kiln_session_create_with_arena(
    model: *const KilnModel,
    arena: *mut u8,
    arena_size: usize,
    out: *mut *mut KilnSession,
) -> KilnStatus {
    guard(|| {
        // SAFETY: the caller's contract above.
        let out = unsafe { args::out(out, ptr::null_mut(), "out (the session handle's address)") }?;
        // SAFETY: the caller's contract above: the bytes are the session's
        // alone until it is freed, which is the 'static claim KilnSession
        // documents.
        let arena = unsafe { args::slice_mut(arena, arena_size, "arena") }?;
        // SAFETY: the caller's contract above.
        unsafe { create(model, Some(arena), out) }
    })
}

/// Frees a session; NULL is ignored.
///
/// # Safety
/// `session` is NULL or a handle from `kiln_session_create*`, not freed before.
#[no_mangle]
pub unsafe extern "C" fn kiln_session_free(session: *mut KilnSession) {
    guard(|| {
        if !session.is_null() {
            // SAFETY: made by Box::into_raw in `create`, freed only here (the caller's contract).
            drop(unsafe { Box::from_raw(session) });
        }
        Ok(())
    });
}

/// The caller's session.
///
/// # Safety
/// `session` is NULL or a live handle that no other thread uses meanwhile.
unsafe fn session_mut<'a>(session: *mut KilnSession) -> Result<&'a mut Session<'static>, Failure> {
    // SAFETY: passed on to the caller.
    Ok(&mut unsafe { args::handle_mut(session, "session") }?.session)
}

/// Sets input `index` from `count` real values, quantized if the input is int8.
///
/// # Safety
/// `session` is NULL or a live handle; `values` is NULL or `count` readable floats.
#[no_mangle]
pub unsafe extern "C" fn kiln_session_set_input_f32(
    session: *mut KilnSession,
    index: usize,
    values: *const f32,
    count: usize,
) -> KilnStatus {
    guard(|| {
        // SAFETY: the caller's contract above.
        let (s, values) = unsafe { (session_mut(session)?, args::slice(values, count, "values")?) };
        Ok(s.set_input_f32(index, values)?)
    })
}

/// Sets int8 input `index` from `count` already-quantized values.
///
/// # Safety
/// `session` is NULL or a live handle; `values` is NULL or `count` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn kiln_session_set_input_i8(
    session: *mut KilnSession,
    index: usize,
    values: *const i8,
    count: usize,
) -> KilnStatus {
    guard(|| {
        // SAFETY: the caller's contract above.
        let (s, values) = unsafe { (session_mut(session)?, args::slice(values, count, "values")?) };
        Ok(s.set_input_i8(index, values)?)
    })
}

/// Runs the model on the inputs set before; allocates nothing.
///
/// # Safety
/// `session` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn kiln_session_run(session: *mut KilnSession) -> KilnStatus {
    guard(|| {
        // SAFETY: the caller's contract above.
        unsafe { session_mut(session) }?.run();
        Ok(())
    })
}

/// Reads output `index` into `count` real values, dequantizing an int8 output.
///
/// # Safety
/// `session` is NULL or a live handle; `values` is NULL or `count` writable floats.
#[no_mangle]
pub unsafe extern "C" fn kiln_session_output_f32(
    session: *mut KilnSession,
    index: usize,
    values: *mut f32,
    count: usize,
) -> KilnStatus {
    guard(|| {
        // SAFETY: the caller's contract above.
        let (s, values) = unsafe { (session_mut(session)?, args::slice_mut(values, count, "values")?) };
        Ok(s.output_f32(index, values)?)
    })
}

/// Copies int8 output `index`'s `count` raw quantized values.
///
/// # Safety
/// `session` is NULL or a live handle; `values` is NULL or `count` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn kiln_session_output_i8(
    session: *mut KilnSession,
    index: usize,
    values: *mut i8,
    count: usize,
) -> KilnStatus {
    guard(|| {
        // SAFETY: the caller's contract above.
        let (s, values) = unsafe { (session_mut(session)?, args::slice_mut(values, count, "values")?) };
        let output = s.output_i8(index)?;
        if output.len() != count {
            return Err(Error::Length { role: "output", index, expected: output.len(), given: count }.into());
        }
        values.copy_from_slice(output);
        Ok(())
    })
}
