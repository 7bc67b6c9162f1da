//! Checks on the caller's pointers and sizes before any is dereferenced:
//! NULL, alignment and byte sizes that no buffer can have. What C cannot
//! tell us (whether memory behind a non-NULL pointer is really there) is the
//! caller's contract, stated in kiln.h.

use std::ffi::{c_char, CStr};

use crate::status::{Failure, KilnStatus};

fn check<T>(ptr: *const T, what: &str) -> Result<(), Failure> {
    if ptr.is_null() {
        return Err(Failure::new(KilnStatus::NullArgument, format!("{what} is NULL")));
    }
    if !ptr.is_aligned() {
        let align = align_of::<T>();
        return Err(Failure::new(
            KilnStatus::InvalidArgument,
            format!("{what} ({ptr:p}) is not aligned to {align} bytes, as its element type needs"),
        ));
    }
    Ok(())
}

fn check_array<T>(ptr: *const T, count: usize, what: &str) -> Result<(), Failure> {
    check(ptr, what)?;
    if count.checked_mul(size_of::<T>()).is_none_or(|bytes| bytes > isize::MAX as usize) {
        return Err(Failure::new(
            KilnStatus::InvalidArgument,
            format!("{what} claims {count} elements, more than any buffer holds"),
        ));
    }
    Ok(())
}

/// The caller's array of `count` elements, read-only.
///
/// # Safety
/// If `ptr` is not NULL, it must point to `count` readable elements that
/// nothing writes to while the slice lives.
pub(crate) unsafe fn slice<'a, T>(ptr: *const T, count: usize, what: &str) -> Result<&'a [T], Failure> {
    check_array(ptr, count, what)?;
    // SAFETY: non-NULL, aligned, at most isize::MAX bytes (checked above);
    // the memory is valid for `count` elements (the caller's contract).
    Ok(unsafe { std::slice::from_raw_parts(ptr, count) })
}

/// The caller's array of `count` elements, writable.
///
/// # Safety
/// If `ptr` is not NULL, it must point to `count` writable elements that
/// nothing else accesses while the slice lives.
pub(crate) unsafe fn slice_mut<'a, T>(ptr: *mut T, count: usize, what: &str) -> Result<&'a mut [T], Failure> {
    check_array(ptr, count, what)?;
    // SAFETY: non-NULL, aligned, at most isize::MAX bytes (checked above);
    // the memory is valid and exclusively ours for `count` elements (the
    // caller's contract).
    Ok(unsafe { std::slice::from_raw_parts_mut(ptr, count) })
}

/// A handle the caller passes in.
///
/// # Safety
/// If `ptr` is not NULL, it must be a live handle of this type, not used by
/// another thread during the call.
pub(crate) unsafe fn handle<'a, T>(ptr: *const T, what: &str) -> Result<&'a T, Failure> {
    check(ptr, what)?;
    // SAFETY: non-NULL and aligned (checked above); a live handle made by
    // this library (the caller's contract).
    Ok(unsafe { &*ptr })
}

/// A handle the caller passes in, for a call that changes it.
///
/// # Safety
/// As [`handle`], and no other reference to it exists during the call.
pub(crate) unsafe fn handle_mut<'a, T>(ptr: *mut T, what: &str) -> Result<&'a mut T, Failure> {
    check(ptr, what)?;
    // SAFETY: non-NULL and aligned (checked above); a live handle made by
    // this library and used by this call alone (the caller's contract).
    Ok(unsafe { &mut *ptr })
}

/// A NUL-terminated string argument.
///
/// # Safety
/// If `ptr` is not NULL, it must point to a NUL-terminated string.
pub(crate) unsafe fn c_str<'a>(ptr: *const c_char, what: &str) -> Result<&'a CStr, Failure> {
    check(ptr, what)?;
    // SAFETY: non-NULL (checked above) and NUL-terminated (the caller's contract).
    Ok(unsafe { CStr::from_ptr(ptr) })
}

/// An out-parameter: checked, and set to `empty` at once, so that the caller
/// sees a defined value (NULL for a handle) whatever happens next.
///
/// # Safety
/// If `ptr` is not NULL, it must point to writable memory for one `T`.
pub(crate) unsafe fn out<'a, T>(ptr: *mut T, empty: T, what: &str) -> Result<&'a mut T, Failure> {
    check(ptr, what)?;
    // SAFETY: non-NULL and aligned (checked above), writable (the caller's
    // contract); `write` does not drop the old, possibly uninitialised, value.
    unsafe { ptr.write(empty) };
    // SAFETY: as above, and now initialised.
    Ok(unsafe { &mut *ptr })
}
