//! The runtime's one error type.

use alloc::string::String;
use core::fmt;

/// Everything that can go wrong when loading or running a model.
///
/// Load-time variants describe what is wrong with the file; run-time variants
/// describe what is wrong with the caller's buffers. [`Session::run`] itself
/// never fails on account of the file: that was checked at load.
///
/// [`Session::run`]: crate::Session::run
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A kernel level was asked for that this CPU does not support.
    UnsupportedIsa(crate::kernels::Isa),
    /// `KILN_ISA` names no kernel level.
    UnknownIsa(String),
    /// The bytes do not start with the kiln magic.
    NotKiln,
    /// The file's format version is not one this runtime reads.
    Version {
        /// Version found in the file.
        found: (u16, u16),
        /// Newest version this runtime reads.
        supported: (u16, u16),
    },
    /// The checksum in the header does not match the file's contents.
    Checksum {
        /// Checksum stored in the header.
        stored: u32,
        /// Checksum of the bytes.
        computed: u32,
    },
    /// The file's structure is invalid; the message names the problem.
    Malformed(String),
    /// The byte buffer does not start at the alignment the format needs.
    Misaligned {
        /// Required alignment in bytes.
        required: usize,
        /// Address of the buffer modulo `required`.
        remainder: usize,
    },
    /// A caller-provided arena is too small or misaligned.
    Arena {
        /// Bytes the model's memory plan needs.
        needed: usize,
        /// Bytes the caller gave.
        given: usize,
        /// Whether the buffer started on a 64-byte boundary.
        aligned: bool,
    },
    /// The heap could not give a session its arena.
    OutOfMemory {
        /// Bytes asked for.
        bytes: usize,
    },
    /// The model asks for more than the caller's [`crate::Limits`] allow.
    OverLimit {
        /// What is too large ("arena bytes", "elements in tensor `NAME`",
        /// "steps a run").
        what: String,
        /// How large the model has it.
        size: u64,
        /// The caller's limit.
        limit: u64,
    },
    /// An input value that is NaN or infinite.
    NotFinite {
        /// Which input.
        index: usize,
        /// The element's position in the caller's buffer.
        at: usize,
        /// The value.
        value: f32,
    },
    /// An input or output index out of range.
    NoSuchTensor {
        /// "input" or "output".
        role: &'static str,
        /// The index asked for.
        index: usize,
        /// How many the model has.
        count: usize,
    },
    /// A buffer whose length does not match the tensor.
    Length {
        /// "input" or "output".
        role: &'static str,
        /// Which one.
        index: usize,
        /// Elements the tensor holds.
        expected: usize,
        /// Elements the caller gave.
        given: usize,
    },
    /// An input or output accessed as the wrong element type.
    Type {
        /// "input" or "output".
        role: &'static str,
        /// Which one.
        index: usize,
        /// What the tensor holds.
        holds: crate::DType,
        /// What the caller asked for.
        asked: crate::DType,
    },
    /// Reading a model file failed.
    #[cfg(feature = "std")]
    Io {
        /// The path that was read.
        path: String,
        /// What the operating system said.
        source: std::io::Error,
    },
}

impl Error {
    /// A [`Error::Malformed`] from format arguments.
    pub(crate) fn malformed(args: fmt::Arguments<'_>) -> Self {
        Error::Malformed(alloc::fmt::format(args))
    }
}

/// `bail!`-style shorthand for returning [`Error::Malformed`].
macro_rules! malformed {
    ($($arg:tt)*) => {
        return Err($crate::error::Error::malformed(format_args!($($arg)*)))
    };
}
pub(crate) use malformed;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::UnsupportedIsa(isa) => write!(
                f,
                "this CPU does not support the {isa} kernels; ask for a level it supports \
                 (scalar always works), or unset KILN_ISA to choose automatically"
            ),
            Error::UnknownIsa(name) => write!(
                f,
                "KILN_ISA={name:?} names no kernel level; use one of auto, scalar, avx2, avxvnni, \
                 avx512vnni, neon, dotprod"
            ),
            Error::NotKiln => {
                write!(f, "not a .kiln file (wrong magic bytes); make one with `kiln convert MODEL.onnx -o MODEL.kiln`")
            }
            Error::Version { found, supported } => write!(
                f,
                "the file is .kiln format {}.{}, this runtime reads {}.{} and older minor versions of {}; \
                 convert the model again with a matching `kiln convert`",
                found.0, found.1, supported.0, supported.1, supported.0
            ),
            Error::Checksum { stored, computed } => write!(
                f,
                "corrupt .kiln file: checksum {computed:#010x} does not match the header's {stored:#010x}; \
                 the file was damaged in transfer or storage, copy or convert it again"
            ),
            Error::Malformed(msg) => write!(f, "invalid .kiln file: {msg}"),
            Error::Misaligned { required, remainder } => write!(
                f,
                "model bytes start {remainder} bytes past a {required}-byte boundary; \
                 load them into aligned memory (see `kiln_runtime::format::Aligned` for include_bytes!)"
            ),
            Error::Arena { needed, given, aligned } => write!(
                f,
                "arena of {given} bytes (64-byte aligned: {aligned}) given, the model needs {needed} bytes \
                 starting on a 64-byte boundary (see Model::arena_size)"
            ),
            Error::OutOfMemory { bytes } => write!(
                f,
                "cannot allocate the model's arena of {bytes} bytes: not enough memory; free some, or give \
                 the session a buffer of your own (Session::with_arena)"
            ),
            Error::OverLimit { what, size, limit } => write!(
                f,
                "the model needs {size} {what}, more than the {limit} allowed; raise the limit if the model is \
                 trusted and the machine can hold it"
            ),
            Error::NotFinite { index, at, value } => write!(
                f,
                "input {index} holds {value} at element {at}: inputs must be finite numbers (NaN and infinity \
                 have no int8 value); check the preprocessing"
            ),
            Error::NoSuchTensor { role, index, count } => {
                write!(f, "{role} {index} asked for, the model has {count} {role}s")
            }
            Error::Length { role, index, expected, given } => {
                write!(f, "{role} {index} holds {expected} elements, the buffer given has {given}")
            }
            Error::Type { role, index, holds, asked } => {
                write!(f, "{role} {index} holds {holds:?} elements, accessed as {asked:?}")
            }
            #[cfg(feature = "std")]
            Error::Io { path, source } => write!(f, "cannot read {path}: {source}"),
        }
    }
}

/// The `Display` text already includes an I/O error's cause, so `source`
/// does not repeat it (error reporters would print it twice).
impl core::error::Error for Error {}
