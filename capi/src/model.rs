//! `kiln_model`: opening a model and describing its inputs and outputs.

use std::ffi::{c_char, CString};
use std::ptr;
use std::sync::Arc;

use kiln_runtime::format::{AlignedBytes, ALIGN};
use kiln_runtime::{DType, Model, TensorInfo};

use crate::args;
use crate::status::{guard, Failure, KilnStatus};

/// Element type of a tensor; the values are the `.kiln` file's codes.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KilnDtype {
    /// Signed 8-bit, quantized with the tensor's scale and zero point.
    I8 = 1,
    /// Unsigned 8-bit.
    U8 = 2,
    /// Signed 32-bit.
    I32 = 3,
    /// IEEE binary32.
    F32 = 4,
    /// Packed int8 weights (constants only: never an input or output).
    Packed = 5,
}

impl From<DType> for KilnDtype {
    fn from(d: DType) -> Self {
        match d {
            DType::I8 => KilnDtype::I8,
            DType::U8 => KilnDtype::U8,
            DType::I32 => KilnDtype::I32,
            DType::F32 => KilnDtype::F32,
            DType::Packed => KilnDtype::Packed,
        }
    }
}

/// `kiln_tensor_info`: one input or output, as `kiln_model_input_info`
/// and `kiln_model_output_info` describe it.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct KilnTensorInfo {
    /// NUL-terminated name, owned by the model handle.
    pub name: *const c_char,
    /// Element type.
    pub dtype: KilnDtype,
    /// Number of dimensions, 0 to 4.
    pub rank: usize,
    /// The dimensions (NHWC for images); entries past `rank` are 1.
    pub dims: [usize; 4],
    /// Number of elements: the count the set/read functions take.
    pub elements: usize,
    /// Quantization: real = scale * (q - zero_point); 1 and 0 for f32.
    pub scale: f32,
    /// See `scale`.
    pub zero_point: i32,
}

impl KilnTensorInfo {
    /// What a failed call leaves in the caller's struct.
    const EMPTY: Self = KilnTensorInfo {
        name: ptr::null(),
        dtype: KilnDtype::F32,
        rank: 0,
        dims: [0; 4],
        elements: 0,
        scale: 0.0,
        zero_point: 0,
    };
}

/// What a model handle and the sessions made from it share.
pub(crate) struct Loaded {
    pub(crate) model: Model<'static>,
    input_names: Vec<CString>,
    output_names: Vec<CString>,
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
        publish(Model::from_aligned_bytes(AlignedBytes::copy_of(data))?, out);
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
unsafe fn loaded<'a>(model: *const KilnModel) -> Result<&'a Loaded, Failure> {
    // SAFETY: passed on to the caller.
    Ok(&unsafe { args::handle(model, "model") }?.loaded)
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

/// Which of a model's tensor lists a call is about.
#[derive(Clone, Copy)]
enum Role {
    Input,
    Output,
}

impl Loaded {
    fn count(&self, role: Role) -> usize {
        match role {
            Role::Input => self.model.inputs().len(),
            Role::Output => self.model.outputs().len(),
        }
    }

    fn info(&self, role: Role, index: usize) -> Result<KilnTensorInfo, Failure> {
        let (info, names, word) = match role {
            Role::Input => (self.model.inputs().nth(index), &self.input_names, "input"),
            Role::Output => (self.model.outputs().nth(index), &self.output_names, "output"),
        };
        let Some(t) = info else {
            let count = self.count(role);
            let message = format!("{word} {index} asked for, the model has {count} {word}s");
            return Err(Failure::new(KilnStatus::NoSuchTensor, message));
        };
        let mut dims = [1; 4];
        dims[..t.shape.rank()].copy_from_slice(t.shape.dims());
        Ok(KilnTensorInfo {
            name: names[index].as_ptr(),
            dtype: t.dtype.into(),
            rank: t.shape.rank(),
            dims,
            elements: t.shape.elements(),
            scale: t.quant.scale,
            zero_point: t.quant.zero_point,
        })
    }
}

/// # Safety
/// As the public functions below.
unsafe fn count(model: *const KilnModel, count: *mut usize, role: Role) -> KilnStatus {
    guard(|| {
        // SAFETY: passed on to the caller.
        let count = unsafe { args::out(count, 0, "count") }?;
        // SAFETY: passed on to the caller.
        *count = unsafe { loaded(model) }?.count(role);
        Ok(())
    })
}

/// # Safety
/// As the public functions below.
unsafe fn info(model: *const KilnModel, index: usize, info: *mut KilnTensorInfo, role: Role) -> KilnStatus {
    guard(|| {
        // SAFETY: passed on to the caller.
        let info = unsafe { args::out(info, KilnTensorInfo::EMPTY, "info") }?;
        // SAFETY: passed on to the caller.
        *info = unsafe { loaded(model) }?.info(role, index)?;
        Ok(())
    })
}

/// The number of inputs.
///
/// # Safety
/// `model` is NULL or a live handle; `count` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn kiln_model_input_count(model: *const KilnModel, count: *mut usize) -> KilnStatus {
    // SAFETY: the same contract.
    unsafe { self::count(model, count, Role::Input) }
}

/// The number of outputs.
///
/// # Safety
/// `model` is NULL or a live handle; `count` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn kiln_model_output_count(model: *const KilnModel, count: *mut usize) -> KilnStatus {
    // SAFETY: the same contract.
    unsafe { self::count(model, count, Role::Output) }
}

/// Describes input `index`.
///
/// # Safety
/// `model` is NULL or a live handle; `info` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn kiln_model_input_info(
    model: *const KilnModel,
    index: usize,
    info: *mut KilnTensorInfo,
) -> KilnStatus {
    // SAFETY: the same contract.
    unsafe { self::info(model, index, info, Role::Input) }
}

/// Describes output `index`.
///
/// # Safety
/// `model` is NULL or a live handle; `info` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn kiln_model_output_info(
    model: *const KilnModel,
    index: usize,
    info: *mut KilnTensorInfo,
) -> KilnStatus {
    // SAFETY: the same contract.
    unsafe { self::info(model, index, info, Role::Output) }
}
