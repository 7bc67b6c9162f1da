//! `include/kiln.h` is written by hand: these tests check it against the
//! library, so that the two cannot drift apart. The functions it declares are
//! exactly the `kiln_*` symbols `libkiln.a` exports (read with `nm`); its enum
//! values are the Rust enums'; a C compiler lays out `kiln_tensor_info` as
//! Rust does.
#![allow(clippy::std_instead_of_core)]

use std::collections::BTreeSet;
use std::mem::{offset_of, size_of};
use std::path::{Path, PathBuf};
use std::process::Command;

use kiln::{KilnDtype, KilnStatus, KilnTensorInfo};

fn include_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("include")
}

/// The header without its comments.
fn header() -> String {
    let text = std::fs::read_to_string(include_dir().join("kiln.h")).expect("capi/include/kiln.h is readable");
    let mut out = String::new();
    let mut rest = text.as_str();
    while let Some(start) = rest.find("/*") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find("*/").expect("comments in kiln.h are closed");
        rest = &rest[start + end + 2..];
    }
    out.push_str(rest);
    out
}

/// The functions the header declares: each `kiln_x(` outside comments.
fn declared_functions() -> BTreeSet<String> {
    let h = header();
    h.match_indices('(')
        .filter_map(|(i, _)| {
            let before = &h[..i];
            let start = before.rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).map_or(0, |p| p + 1);
            let name = &before[start..];
            name.starts_with("kiln_").then(|| name.to_string())
        })
        .collect()
}

/// `libkiln.a`: cargo builds the library, with all its crate types, next to
/// this test's executable before it runs the test.
fn static_library() -> PathBuf {
    let exe = std::env::current_exe().expect("the test knows its path");
    let lib = exe.parent().expect("the test lives in a folder").join("libkiln.a");
    assert!(lib.exists(), "{} was not built next to the test", lib.display());
    lib
}

#[test]
fn header_declares_exactly_the_exported_functions() {
    let lib = static_library();
    let nm = Command::new("nm").args(["--defined-only", "--extern-only"]).arg(&lib).output();
    let nm = nm.expect("`nm` (binutils) runs: install binutils");
    assert!(nm.status.success(), "nm failed: {}", String::from_utf8_lossy(&nm.stderr));
    let exported: BTreeSet<String> = String::from_utf8_lossy(&nm.stdout)
        .lines()
        .filter_map(|line| match line.split_whitespace().collect::<Vec<_>>()[..] {
            [_, "T", name] if name.starts_with("kiln_") => Some(name.to_string()),
            _ => None,
        })
        .collect();
    let declared = declared_functions();
    assert!(exported.len() >= 17, "{} kiln_ functions in {}: {exported:?}", exported.len(), lib.display());
    assert_eq!(declared, exported, "kiln.h's functions (left) and libkiln.a's exports (right) differ");
}

/// The header's value for a constant: `NAME = value` in an enum or
/// `#define NAME value`.
fn constant(header: &str, name: &str) -> i64 {
    let value = header
        .match_indices(name)
        .map(|(at, _)| header[at + name.len()..].trim_start())
        .find_map(|rest| {
            rest.strip_prefix('=').or_else(|| rest.starts_with(|c: char| c.is_ascii_digit()).then_some(rest))
        })
        .unwrap_or_else(|| panic!("kiln.h gives {name} no value"));
    let digits: String = value.trim_start().chars().take_while(char::is_ascii_digit).collect();
    digits.parse().unwrap_or_else(|_| panic!("{name}'s value in kiln.h is not a number"))
}

/// The C name of each status: a new variant fails to compile here until the
/// header (and this table) has it.
fn status_name(s: KilnStatus) -> &'static str {
    match s {
        KilnStatus::Ok => "KILN_OK",
        KilnStatus::NullArgument => "KILN_ERR_NULL_ARGUMENT",
        KilnStatus::InvalidArgument => "KILN_ERR_INVALID_ARGUMENT",
        KilnStatus::Io => "KILN_ERR_IO",
        KilnStatus::NotKiln => "KILN_ERR_NOT_KILN",
        KilnStatus::Version => "KILN_ERR_VERSION",
        KilnStatus::Checksum => "KILN_ERR_CHECKSUM",
        KilnStatus::Malformed => "KILN_ERR_MALFORMED",
        KilnStatus::Arena => "KILN_ERR_ARENA",
        KilnStatus::NoSuchTensor => "KILN_ERR_NO_SUCH_TENSOR",
        KilnStatus::Length => "KILN_ERR_LENGTH",
        KilnStatus::Type => "KILN_ERR_TYPE",
        KilnStatus::Isa => "KILN_ERR_ISA",
        KilnStatus::Internal => "KILN_ERR_INTERNAL",
        KilnStatus::OutOfMemory => "KILN_ERR_OUT_OF_MEMORY",
        KilnStatus::Limit => "KILN_ERR_LIMIT",
        KilnStatus::NotFinite => "KILN_ERR_NOT_FINITE",
    }
}

fn dtype_name(d: KilnDtype) -> &'static str {
    match d {
        KilnDtype::I8 => "KILN_DTYPE_I8",
        KilnDtype::U8 => "KILN_DTYPE_U8",
        KilnDtype::I32 => "KILN_DTYPE_I32",
        KilnDtype::F32 => "KILN_DTYPE_F32",
        KilnDtype::Packed => "KILN_DTYPE_PACKED",
        KilnDtype::F16 => "KILN_DTYPE_F16",
    }
}

#[test]
fn header_enums_have_the_library_values() {
    use KilnStatus::*;
    let h = header();
    let statuses = [
        Ok,
        NullArgument,
        InvalidArgument,
        Io,
        NotKiln,
        Version,
        Checksum,
        Malformed,
        Arena,
        NoSuchTensor,
        Length,
        Type,
        Isa,
        Internal,
        OutOfMemory,
        Limit,
        NotFinite,
    ];
    for s in statuses {
        assert_eq!(constant(&h, status_name(s)), s as i64, "{s:?}");
    }
    assert_eq!(h.matches("KILN_ERR_").count() + 1, statuses.len(), "kiln.h has a status the library lacks");
    let dtypes = [KilnDtype::I8, KilnDtype::U8, KilnDtype::I32, KilnDtype::F32, KilnDtype::Packed, KilnDtype::F16];
    for d in dtypes {
        assert_eq!(constant(&h, dtype_name(d)), d as i64, "{d:?}");
    }
    assert_eq!(h.matches("KILN_DTYPE_").count(), dtypes.len(), "kiln.h has a dtype the library lacks");
    assert_eq!(constant(&h, "KILN_ARENA_ALIGNMENT"), kiln_runtime::format::ALIGN as i64);
}

#[test]
fn c_lays_out_tensor_info_as_rust_does() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("capi-layout");
    std::fs::create_dir_all(&dir).unwrap();
    let source = dir.join("layout.c");
    let fields = ["name", "dtype", "rank", "dims", "elements", "scale", "zero_point"];
    let prints: String =
        fields.iter().map(|f| format!("printf(\"%zu\\n\", offsetof(kiln_tensor_info, {f}));\n")).collect();
    let program = format!(
        "#include <stddef.h>\n#include <stdio.h>\n#include \"kiln.h\"\n\
         int main(void) {{\nprintf(\"%zu\\n\", sizeof(kiln_tensor_info));\n{prints}return 0;\n}}\n"
    );
    std::fs::write(&source, program).unwrap();
    let exe = dir.join("layout");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let status = Command::new(&cc).arg("-I").arg(include_dir()).arg(&source).arg("-o").arg(&exe).status();
    assert!(status.expect("a C compiler runs ($CC or cc)").success(), "{cc} could not compile {}", source.display());
    let out = Command::new(&exe).output().expect("the layout program runs");
    let c: Vec<usize> = String::from_utf8_lossy(&out.stdout).lines().map(|l| l.parse().unwrap()).collect();
    let rust = vec![
        size_of::<KilnTensorInfo>(),
        offset_of!(KilnTensorInfo, name),
        offset_of!(KilnTensorInfo, dtype),
        offset_of!(KilnTensorInfo, rank),
        offset_of!(KilnTensorInfo, dims),
        offset_of!(KilnTensorInfo, elements),
        offset_of!(KilnTensorInfo, scale),
        offset_of!(KilnTensorInfo, zero_point),
    ];
    assert_eq!(c, rust, "sizeof and offsetof of kiln_tensor_info's fields in C (left) and Rust (right)");
}
