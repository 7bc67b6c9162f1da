//! The C API from C: `examples/c/embed.c` and `capi/tests/c/hostile.c` are
//! compiled with `cc` against `libkiln.a` and run on SFace, converted here.
//!
//! - The example must print, digit for digit, what `kiln run` prints for the
//!   same input (a face crop preprocessed to `.npy`, since C has no image
//!   decoder; `kiln run` on the PNG must print the same numbers too).
//! - The hostile caller must get the status codes and messages it expects and
//!   no crash; under valgrind when it is installed (`KILN_VALGRIND=1`, as CI
//!   sets, makes valgrind required).
//!
//! The files it leaves in `$CARGO_TARGET_TMPDIR/c_api` (model, `.npy`
//! inputs, `kiln run`'s output) are what `targets/ci` runs the aarch64 build
//! of the example on.
#![allow(clippy::std_instead_of_core)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// What `libkiln.a` needs from the system on Linux: the output of
/// `cargo rustc -p kiln-capi --lib --crate-type staticlib -- --print native-static-libs`.
const NATIVE_LIBS: [&str; 7] = ["-lgcc_s", "-lutil", "-lrt", "-lpthread", "-lm", "-ldl", "-lc"];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Where the test writes its files, shared with targets/ci.
fn work_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("c_api");
    std::fs::create_dir_all(&dir).expect("the target folder is writable");
    dir
}

/// Runs a command and returns its output, failing the test with its stderr
/// if it fails.
fn run(command: &mut Command) -> Output {
    let out = command.output().unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(
        out.status.success(),
        "{command:?} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(command: &mut Command) -> String {
    String::from_utf8(run(command).stdout).expect("the output is UTF-8")
}

fn kiln() -> Command {
    Command::new(env!("CARGO_BIN_EXE_kiln"))
}

/// SFace converted with the repository's calibration faces, once per run.
fn sface() -> &'static Path {
    static MODEL: OnceLock<PathBuf> = OnceLock::new();
    MODEL.get_or_init(|| {
        let onnx = root().join("models/cache/face_recognition_sface_2021dec.onnx");
        assert!(onnx.exists(), "{} is missing: run `models/fetch` first", onnx.display());
        let out = work_dir().join("sface.kiln");
        run(kiln()
            .arg("convert")
            .arg(&onnx)
            .arg("-o")
            .arg(&out)
            .arg("--calib")
            .arg(root().join("tests/data/calibration")));
        out
    })
}

/// `libkiln.a`, which cargo builds next to this test (kiln-capi is a
/// dev-dependency of the CLI for this reason).
fn static_library() -> PathBuf {
    let exe = std::env::current_exe().expect("the test knows its path");
    let lib = exe.parent().expect("the test lives in a folder").join("libkiln.a");
    assert!(lib.exists(), "{} was not built next to the test", lib.display());
    lib
}

/// Compiles a C program against libkiln.a, as README.md tells users to.
fn compile(source: &str, name: &str) -> PathBuf {
    let exe = work_dir().join(name);
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    run(Command::new(cc)
        .args(["-std=c11", "-O2", "-g", "-ffp-contract=off", "-Wall", "-Wextra", "-Wpedantic", "-Werror", "-I"])
        .arg(root().join("capi/include"))
        .arg(root().join(source))
        .arg(static_library())
        .args(NATIVE_LIBS)
        .arg("-o")
        .arg(&exe));
    exe
}

/// Writes an f32 tensor as a version-1 `.npy` file.
fn write_npy(path: &Path, shape: &[usize], values: &[f32]) {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({}), }}", dims.join(", "));
    while !(10 + header.len() + 1).is_multiple_of(64) {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend(u16::try_from(header.len()).expect("a short header").to_le_bytes());
    bytes.extend(header.as_bytes());
    values.iter().for_each(|v| bytes.extend(v.to_le_bytes()));
    std::fs::write(path, bytes).expect("the target folder is writable");
}

#[test]
fn c_example_prints_what_kiln_run_prints() {
    let model = sface();
    let dir = work_dir();
    let faces = ["tests/data/faces112/obama_00.png", "tests/data/faces112/obama2_00.png"];
    let npys = ["face0.npy", "face1.npy"];
    let shape = [1, 3, 112, 112];
    for (face, npy) in faces.iter().zip(npys) {
        let options = kiln_converter::input::ImageOptions::default();
        let sample = kiln_converter::input::load_file(&root().join(face), &shape, &options).expect("the face loads");
        write_npy(&dir.join(npy), &shape, &sample.values);
    }

    let kiln_run = stdout(kiln().current_dir(&dir).arg("run").arg(model).args(npys));
    let embed = stdout(Command::new(compile("examples/c/embed.c", "embed")).current_dir(&dir).arg(model).args(npys));
    assert_eq!(embed, kiln_run, "the C example (left) and `kiln run` (right) differ on the same .npy files");

    // The .npy files are the images: `kiln run` on the PNGs prints the same.
    let on_images = stdout(kiln().current_dir(root()).arg("run").arg(model).args(faces));
    let renamed = faces.iter().zip(npys).fold(on_images, |text, (face, npy)| text.replace(face, npy));
    assert_eq!(renamed, kiln_run, "`kiln run` on the PNGs (left) and on their .npy files (right) differ");

    let lines: Vec<&str> = kiln_run.lines().collect();
    assert_eq!(lines.len(), 3, "{kiln_run}");
    assert!(lines[0].starts_with("face0.npy: 128 values, norm "), "{kiln_run}");
    assert!(lines[2].starts_with("cosine similarity face0.npy ~ face1.npy: 0."), "{kiln_run}");
    std::fs::write(dir.join("expected.txt"), &kiln_run).expect("the target folder is writable");
}

#[test]
fn hostile_c_caller_gets_errors_not_crashes() {
    let model = sface();
    let exe = compile("capi/tests/c/hostile.c", "hostile");
    let scratch = work_dir().join("scratch");
    std::fs::create_dir_all(&scratch).unwrap();
    let has_valgrind = Command::new("valgrind").arg("--version").output().is_ok_and(|o| o.status.success());
    if std::env::var_os("KILN_VALGRIND").is_some_and(|v| v == "1") {
        assert!(has_valgrind, "KILN_VALGRIND=1 but valgrind is not installed (CI installs it: capi/setup)");
    }
    let mut command = if has_valgrind {
        let mut c = Command::new("valgrind");
        c.args(["--error-exitcode=1", "--leak-check=full", "--errors-for-leak-kinds=definite,indirect,possible"])
            .arg(&exe);
        c
    } else {
        eprintln!("valgrind not installed: running the hostile C test natively");
        Command::new(&exe)
    };
    let output = run(command.arg(model).arg(&scratch));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "a panic message reached the host's stderr:\n{stderr}");
    let out = String::from_utf8(output.stdout).expect("the output is UTF-8");
    let summary = out.lines().last().unwrap_or_default();
    let checks: usize = summary
        .strip_prefix("hostile: ")
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no summary line in:\n{out}"));
    assert!(checks >= 80 && summary.ends_with(", 0 failed"), "{out}");
}
