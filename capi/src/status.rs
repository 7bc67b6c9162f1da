//! Status codes, the thread-local last-error message, and the guard every
//! entry point runs its body in, so that no panic crosses into C.

use std::cell::{Cell, RefCell};
use std::ffi::{c_char, CString};
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

use kiln_runtime::Error;

/// What a call returns: `KILN_OK` or the kind of failure; the message is in
/// `kiln_last_error()`. The values are part of the ABI: never renumber.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KilnStatus {
    /// Success.
    Ok = 0,
    /// A required pointer argument was NULL.
    NullArgument = 1,
    /// An argument is unusable: a misaligned pointer, a size too large for
    /// any buffer, a path that is not valid text on this system.
    InvalidArgument = 2,
    /// The model file could not be read.
    Io = 3,
    /// The bytes are not a .kiln file (wrong magic).
    NotKiln = 4,
    /// The file's format version is not one this library reads.
    Version = 5,
    /// The file's checksum does not match its contents.
    Checksum = 6,
    /// The file's structure is invalid (truncated, inconsistent tables).
    Malformed = 7,
    /// The caller's arena is too small or not 64-byte aligned.
    Arena = 8,
    /// An input or output index out of range.
    NoSuchTensor = 9,
    /// A buffer's element count does not match the tensor.
    Length = 10,
    /// A tensor accessed as the wrong element type (int8 access to an f32 tensor).
    Type = 11,
    /// The kernel level asked for (`KILN_ISA`) is unknown or unsupported.
    Isa = 12,
    /// A bug in kiln: a Rust panic, caught at the boundary.
    Internal = 13,
    /// The heap cannot hold the session's arena.
    OutOfMemory = 14,
    /// The model needs more than `kiln_model_check_limits` allows.
    Limit = 15,
    /// An input value is NaN or infinite.
    NotFinite = 16,
}

/// A failed call: its status and the message for `kiln_last_error()`.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) status: KilnStatus,
    pub(crate) message: String,
}

impl Failure {
    pub(crate) fn new(status: KilnStatus, message: impl Into<String>) -> Self {
        Failure { status, message: message.into() }
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        let status = match e {
            Error::UnsupportedIsa(_) | Error::UnknownIsa(_) => KilnStatus::Isa,
            Error::NotKiln => KilnStatus::NotKiln,
            Error::Version { .. } => KilnStatus::Version,
            Error::Checksum { .. } => KilnStatus::Checksum,
            // The C API copies model bytes into aligned memory, so a
            // misaligned buffer can only be an internal error.
            Error::Misaligned { .. } => KilnStatus::Internal,
            Error::Arena { .. } => KilnStatus::Arena,
            Error::NoSuchTensor { .. } => KilnStatus::NoSuchTensor,
            Error::Length { .. } => KilnStatus::Length,
            Error::Type { .. } => KilnStatus::Type,
            Error::Io { .. } => KilnStatus::Io,
            Error::OutOfMemory { .. } => KilnStatus::OutOfMemory,
            Error::OverLimit { .. } => KilnStatus::Limit,
            Error::NotFinite { .. } => KilnStatus::NotFinite,
            // Malformed, and variants added later.
            _ => KilnStatus::Malformed,
        };
        Failure::new(status, e.to_string())
    }
}

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
    /// Whether this thread is inside an entry point's [`guard`].
    static IN_GUARD: Cell<bool> = const { Cell::new(false) };
}

/// Installs, once, a panic hook that stays silent for panics inside
/// [`guard`] (their message goes to `kiln_last_error()`, never to the host
/// program's stderr) and passes every other panic to the hook before it.
fn silence_guarded_panics() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if !IN_GUARD.try_with(Cell::get).unwrap_or(false) {
                previous(info);
            }
        }));
    });
}

fn set_last_error(message: &str) {
    // A NUL inside a message (a tensor name from a hostile file) would cut it short.
    let message = CString::new(message.replace('\0', "\\0")).unwrap_or_default();
    // Fails only while the thread is being torn down: then nobody can read it.
    let _ = LAST_ERROR.try_with(|last| *last.borrow_mut() = message);
}

/// Runs an entry point's body: a failure sets the thread's last error and
/// returns its status; a panic (a kiln bug) is caught here, because unwinding
/// into C is undefined behaviour and a library must not abort its host.
pub(crate) fn guard(body: impl FnOnce() -> Result<(), Failure>) -> KilnStatus {
    // AssertUnwindSafe: after a panic the caller gets `Internal` and the
    // documentation tells it to free the handles involved; a half-written
    // arena is garbage but memory-safe.
    silence_guarded_panics();
    let outer = IN_GUARD.replace(true);
    let result = panic::catch_unwind(AssertUnwindSafe(body));
    IN_GUARD.set(outer);
    let failure = match result {
        Ok(Ok(())) => return KilnStatus::Ok,
        Ok(Err(failure)) => failure,
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            Failure::new(KilnStatus::Internal, format!("internal error in kiln (please report it): {what}"))
        }
    };
    set_last_error(&failure.message);
    failure.status
}

/// The message of the last call on this thread that failed, or "" if none
/// has. Valid until the next failing kiln call on this thread. Needs no
/// guard: `try_with` does not panic, and nothing else borrows the message
/// during this call.
#[no_mangle]
pub extern "C" fn kiln_last_error() -> *const c_char {
    const EMPTY: &std::ffi::CStr = c"";
    LAST_ERROR.try_with(|last| last.borrow().as_ptr()).unwrap_or(EMPTY.as_ptr())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn last_error() -> String {
        // SAFETY: kiln_last_error returns a NUL-terminated string that lives
        // until the next failing call on this thread.
        unsafe { std::ffi::CStr::from_ptr(kiln_last_error()) }.to_string_lossy().into_owned()
    }

    #[test]
    fn a_panic_is_caught_and_reported_as_internal() {
        assert_eq!(guard(|| panic!("boom")), KilnStatus::Internal);
        assert_eq!(last_error(), "internal error in kiln (please report it): boom");
        let index = 7;
        assert_eq!(guard(|| panic!("index {index}")), KilnStatus::Internal);
        assert!(last_error().ends_with("index 7"), "{}", last_error());
    }

    #[test]
    fn failures_set_the_message_and_successes_keep_it() {
        assert_eq!(last_error(), "");
        let status = guard(|| Err(Failure::new(KilnStatus::Length, "name\0with a NUL")));
        assert_eq!(status, KilnStatus::Length);
        assert_eq!(last_error(), "name\\0with a NUL");
        assert_eq!(guard(|| Ok(())), KilnStatus::Ok);
        assert_eq!(last_error(), "name\\0with a NUL");
    }
}
