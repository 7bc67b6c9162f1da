//! `kiln_model`: opening a model, freeing it, the arena it needs.

use std::ffi::{c_char, CString};
use std::ptr;
use std::sync::Arc;

use kiln_runtime::format::{AlignedBytes, ALIGN};
use kiln_runtime::{Limits, Model, TensorInfo};

use crate::args;
use crate::status::{guard, Failure, KilnStatus};

/// What a model handle and the sessions made from it share.
pub(crate) struct Loaded {
    pub(crate) model: Model<'static>,
    pub(crate) input_names: Vec<CString>,
    pub(crate) output_names: Vec<CString>,
}

impl Loaded {
    fn new(model: Model<'static>) -> Self {
        // C strings end at a NUL: a name holding one is cut there.
        let names = |infos: &mut dyn Iterator<Item = TensorInfo<'_>>| -> Vec<CString> {
            infos.map(|t| CString::new(t.name.split('\0').next().unwrap_or_default()).unwrap_or_default()).collect()
        };
        let (input_names, output_names) = (names(&mut model.inputs()), names(&mut model.outputs()));
        Loaded { model, input_names, output_names }
    }
}

/// kiln.h promises that a model may be used by several threads at once.
const _: fn() = || {
    fn shared_across_threads<T: Send + Sync>() {}
    shared_across_threads::<Loaded>();
};

/// The opaque `kiln_model`. It holds the model in an [`Arc`] that every
/// session made from it shares, so the model lives until the handle and all
/// its sessions are freed, in any order.
pub struct KilnModel {
    pub(crate) loaded: Arc<Loaded>,
}

fn publish(model: Model<'static>, out: &mut *mut KilnModel) {
    *out = Box::into_raw(Box::new(KilnModel { loaded: Arc::new(Loaded::new(model)) }));
}

/// Opens and validates a `.kiln` file, memory-mapping it (the weights are
/// not copied). The file must not be rewritten while the model is open.
///
/// # Safety
/// `path` is NULL or a NUL-terminated string; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn kiln_model_open(path: *const c_char, out: *mut *mut KilnModel) -> KilnStatus {
    guard(|| {
        // SAFETY: the caller's contract above.
        let out = unsafe { args::out(out, ptr::null_mut(), "out (the model handle's address)") }?;
        // SAFETY: the caller's contract above.
        let path = unsafe { args::c_str(path, "path") }?;
        #[cfg(unix)]
        let path = <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(path.to_bytes());
        #[cfg(not(unix))]
        let path = path.to_str().map_err(|_| Failure::new(KilnStatus::InvalidArgument, "path is not UTF-8"))?;
        publish(Model::open(path)?, out);
        Ok(())
    })
}

/// Validates a `.kiln` file held in memory. The bytes are copied into a
/// 64-byte-aligned buffer the handle owns, so the caller's buffer may have
/// any alignment and may be freed as soon as this returns.
///
/// # Safety
/// `data` is NULL or points to `len` readable bytes; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn kiln_model_open_memory(data: *const u8, len: usize, out: *mut *mut KilnModel) -> KilnStatus {
    guard(|| {
        // SAFETY: the caller's contract above.
        let out = unsafe { args::out(out, ptr::null_mut(), "out (the model handle's address)") }?;
        // SAFETY: the caller's contract above.
        let data = unsafe { args::slice(data, len, "data") }?;
        let copy = AlignedBytes::try_copy_of(data).ok_or_else(|| {
            let why = format!("cannot copy {len} bytes: no memory for a buffer that size (is len the model's size?)");
            Failure::new(KilnStatus::InvalidArgument, why)
        })?;
        publish(Model::from_aligned_bytes(copy)?, out);
        Ok(())
    })
}

/// Frees a model handle; NULL is ignored. Sessions made from it stay valid.
///
/// # Safety
/// `model` is NULL or a handle from `kiln_model_open*`, not freed before.
#[no_mangle]
pub unsafe extern "C" fn kiln_model_free(model: *mut KilnModel) {
    guard(|| {
        if !model.is_null() {
            // SAFETY: made by Box::into_raw in `publish`, freed only here (the caller's contract).
            drop(unsafe { Box::from_raw(model) });
        }
        Ok(())
    });
}

/// The caller's model handle.
///
/// # Safety
/// As [`args::handle`].
pub(crate) unsafe fn loaded<'a>(model: *const KilnModel) -> Result<&'a Loaded, Failure> {
    // SAFETY: passed on to the caller.
    Ok(&unsafe { args::handle(model, "model") }?.loaded)
}

/// Refuses a model whose arena, largest activation or work per run is over
/// the caller's limits.
///
/// # Safety
/// `model` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn kiln_model_check_limits(
    model: *const KilnModel,
    max_arena_bytes: usize,
    max_tensor_elements: usize,
    max_work: u64,
) -> KilnStatus {
    guard(|| {
        let limits = Limits { arena_bytes: max_arena_bytes, tensor_elements: max_tensor_elements, work: max_work };
        // SAFETY: the caller's contract above.
        unsafe { loaded(model) }?.model.check_limits(limits)?;
        Ok(())
    })
}

/// The size and alignment of the arena `kiln_session_create_with_arena` needs.
///
/// # Safety
/// `model` is NULL or a live handle; `size` and `alignment` are NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn kiln_model_arena_size(
    model: *const KilnModel,
    size: *mut usize,
    alignment: *mut usize,
) -> KilnStatus {
    guard(|| {
        // SAFETY: the caller's contract above.
        let (size, alignment) = unsafe { (args::out(size, 0, "size")?, args::out(alignment, 0, "alignment")?) };
        // SAFETY: the caller's contract above.
        *size = unsafe { loaded(model) }?.model.arena_size();
        *alignment = ALIGN;
        Ok(())
    })
}
