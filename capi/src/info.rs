//! `kiln_tensor_info`: what a model's inputs and outputs are (name, type,
//! shape, quantization), for callers that size buffers and quantize at run time.

use std::ffi::c_char;
use std::ptr;

use kiln_runtime::DType;

use crate::args;
use crate::model::{loaded, KilnModel, Loaded};
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
    /// IEEE binary16 float weights (constants only: never an input or output).
    F16 = 6,
}

impl From<DType> for KilnDtype {
    fn from(d: DType) -> Self {
        match d {
            DType::I8 => KilnDtype::I8,
            DType::U8 => KilnDtype::U8,
            DType::I32 => KilnDtype::I32,
            DType::F32 => KilnDtype::F32,
            DType::Packed => KilnDtype::Packed,
            DType::F16 => KilnDtype::F16,
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
