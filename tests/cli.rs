//! The `kiln` command line as a user meets it: every bad input gives a
//! message on stderr that names the problem, and a non-zero exit code; the
//! main job (convert SFace, run, inspect, eval) works end to end.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

const SFACE: &str = "models/cache/face_recognition_sface_2021dec.onnx";

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// A scratch folder of its own for each test.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn kiln(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_kiln")).args(args).env("RUST_LOG", "warn").output().unwrap();
    eprintln!("kiln {:?}: {}", args.iter().map(|a| a.as_ref()).collect::<Vec<_>>(), output.status);
    eprintln!("{}", String::from_utf8_lossy(&output.stderr));
    output
}

/// Asserts that `kiln args` fails with a message holding every one of `words`.
fn fails(args: &[&dyn AsRef<std::ffi::OsStr>], words: &[&str]) {
    let output = kiln(args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "kiln succeeded where it must fail");
    assert_eq!(output.status.code(), Some(1), "a clean failure exit, not a crash");
    assert!(stderr.starts_with("error: "), "{stderr}");
    for w in words {
        assert!(stderr.contains(w), "the message lacks {w:?}: {stderr}");
    }
}

/// SFace converted once for all tests, calibrated on the bundled crops.
fn sface_kiln() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let out = scratch("sface").join("sface.kiln");
        let calib = repo("tests/data/calibration");
        let output = kiln(&[&"convert", &repo(SFACE), &"-o", &out, &"--calib", &calib]);
        assert!(output.status.success(), "conversion failed (models/fetch first?)");
        out
    })
}

#[test]
fn convert_names_what_is_wrong() {
    let dir = scratch("convert");
    let calib = repo("tests/data/calibration");
    let out = dir.join("out.kiln");
    let missing = dir.join("missing.onnx");
    fails(&[&"convert", &missing, &"-o", &out, &"--calib", &calib], &["missing.onnx", "does not exist"]);

    let text = dir.join("notes.onnx");
    std::fs::write(&text, "this is a text file, not a model\n").unwrap();
    fails(&[&"convert", &text, &"-o", &out, &"--calib", &calib], &["notes.onnx", "not a readable ONNX model"]);

    let lrn = repo("models/cache/onnx-node/test_lrn/model.onnx");
    fails(&[&"convert", &lrn, &"-o", &out, &"--calib", &calib], &["unsupported ONNX op `LRN`", "node"]);

    let sface = repo(SFACE);
    let nowhere = dir.join("nowhere");
    fails(&[&"convert", &sface, &"-o", &out, &"--calib", &nowhere], &["nowhere", "does not exist"]);
    let empty = dir.join("empty");
    std::fs::create_dir(&empty).unwrap();
    fails(&[&"convert", &sface, &"-o", &out, &"--calib", &empty], &["empty", "holds no"]);
    std::fs::write(empty.join("broken.png"), b"not a png at all").unwrap();
    fails(&[&"convert", &sface, &"-o", &out, &"--calib", &empty], &["cannot read image", "broken.png"]);
    // Normalisations that would make every input give the same output.
    for (flag, words) in [("--mean=nan", "--mean NaN is not a finite number"), ("--scale=1e-45", "must be a finite")] {
        fails(&[&"convert", &sface, &"-o", &out, &"--calib", &calib, &flag], &[words]);
    }
    assert!(!out.exists(), "a failed conversion writes no file");
}

/// A conversion that cannot finish its write (here: the process may write no
/// more than 64 KiB, as on a nearly full disk) leaves the file that was
/// already at the output path as it was; an output path that is the model
/// itself is refused before anything is written.
#[test]
fn convert_never_destroys_a_file() {
    let dir = scratch("never-destroys");
    let calib = repo("tests/data/calibration");
    let model = dir.join("m.onnx");
    std::fs::copy(repo(SFACE), &model).unwrap();
    let original = std::fs::read(&model).unwrap();
    fails(&[&"convert", &model, &"-o", &dir.join(".").join("m.onnx"), &"--calib", &calib], &["m.onnx", "is the input"]);
    assert!(std::fs::read(&model).unwrap() == original, "the model is untouched");

    let out = dir.join("out.kiln");
    std::fs::copy(sface_kiln(), &out).unwrap();
    let good = std::fs::read(&out).unwrap();
    let limited = Command::new("prlimit")
        .arg("--fsize=65536")
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_kiln"))
        .args([&"convert" as &dyn AsRef<std::ffi::OsStr>, &model, &"-o", &out, &"--calib", &calib])
        .env("RUST_LOG", "warn")
        .output()
        .expect("prlimit (util-linux) runs kiln with a file size limit");
    assert!(!limited.status.success(), "a 9.8 MB model cannot be written in 64 KiB");
    assert!(std::fs::read(&out).unwrap() == good, "the good model already at the output path survives");
}

#[test]
fn run_names_what_is_wrong() {
    let model = sface_kiln();
    let dir = scratch("run");
    // A tensor of the wrong size: 3x64x64 where SFace takes 3x112x112.
    let npy = dir.join("small.npy");
    let bytes = kiln_converter::input::encode_npy(&[1, 3, 64, 64], &[0.0; 3 * 64 * 64]);
    std::fs::write(&npy, bytes).unwrap();
    fails(&[&"run", &model, &npy], &["small.npy", "has shape [1, 3, 64, 64]", "[1, 3, 112, 112]"]);

    let text = dir.join("face.png");
    std::fs::write(&text, "not an image").unwrap();
    fails(&[&"run", &model, &text], &["face.png", "cannot read image"]);

    let file = std::fs::read(model).unwrap();
    let truncated = dir.join("truncated.kiln");
    std::fs::write(&truncated, &file[..file.len() / 2]).unwrap();
    let face = repo("tests/data/faces112/obama_00.png");
    fails(&[&"run", &truncated, &face], &["truncated.kiln"]);
    let mut corrupt = file.clone();
    corrupt[file.len() / 2] ^= 0x40;
    let corrupted = dir.join("corrupt.kiln");
    std::fs::write(&corrupted, corrupt).unwrap();
    fails(&[&"run", &corrupted, &face], &["corrupt.kiln"]);

    // A FIFO named like an image, and a folder given as the model: refused
    // by what they are, where opening the FIFO would wait for a writer.
    let fifo = dir.join("fifo.png");
    let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo (coreutils) runs");
    assert!(made.success());
    fails(&[&"run", &model, &fifo], &["fifo.png is not a regular file (a FIFO, socket or device)"]);
    fails(&[&"run", &dir, &face], &["cannot load the .kiln model", "it is a folder: give a .kiln file"]);
    let calib = dir.join("calib");
    std::fs::create_dir(&calib).unwrap();
    std::fs::rename(&fifo, calib.join("face.png")).unwrap();
    let out = dir.join("out.kiln");
    let output = kiln(&[&"convert", &repo(SFACE), &"-o", &out, &"--calib", &calib]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("skipping") && stderr.contains("face.png: not a regular file"), "{stderr}");
    assert!(stderr.contains("holds no .png, .jpg, .jpeg or .npy file"), "{stderr}");

    // A consistent file whose arena (2 x 2^40 bytes) no machine here has:
    // refused by name before any allocation, not killed by the system.
    use kiln_runtime::format::ModelWriter;
    use kiln_runtime::{ops::Act, DType, OpKind, Quant};
    let mut w = ModelWriter::new();
    let q = Quant { scale: 0.5, zero_point: 0 };
    let dims = [1, 1 << 20, 1 << 10, 1 << 10];
    let (x, y) = (w.activation("x", DType::I8, &dims, q), w.activation("y", DType::I8, &dims, q));
    w.op(OpKind::Clamp, &[x], &[y], &Act::NONE.words());
    w.inputs(&[x]);
    w.outputs(&[y]);
    let huge = dir.join("huge.kiln");
    std::fs::write(&huge, w.to_bytes()).unwrap();
    fails(&[&"run", &huge, &face], &["huge.kiln", "2199023255552 arena bytes, more than the"]);
}

#[test]
fn sface_runs_inspects_and_evaluates() {
    let model = sface_kiln();
    let a = repo("tests/data/faces112/obama_00.png");
    let b = repo("tests/data/faces112/obama2_00.png");
    let output = kiln(&[&"run", &model, &a, &b]);
    assert!(output.status.success());
    let stdout = String::from_utf8(output.stdout).unwrap();
    let similarity: f64 = stdout.lines().last().unwrap().rsplit(": ").next().unwrap().parse().unwrap();
    assert!(similarity > 0.363, "two photos of the same person: {stdout}");

    let output = kiln(&[&"inspect", &model, &"--onnx", &repo(SFACE)]);
    assert!(output.status.success());
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(stdout.contains("arena"), "{stdout}");

    let data = scratch("eval");
    for face in [&a, &b] {
        std::fs::copy(face, data.join(face.file_name().unwrap())).unwrap();
    }
    let output = kiln(&[&"eval", &repo(SFACE), &model, &"--data", &data, &"--layers"]);
    assert!(output.status.success());
    let stdout = String::from_utf8(output.stdout).unwrap();
    println!("{stdout}");
    let sqnr: Vec<f64> = stdout
        .lines()
        .skip_while(|l| !l.starts_with("per-layer SQNR"))
        .skip(2)
        // op, kind, precision, SQNR dB, ...
        .map(|l| l.split_whitespace().nth(3).unwrap().parse().unwrap())
        .collect();
    assert!(sqnr.len() >= 28, "SFace has 28 conv and fc layers, the table {}: {stdout}", sqnr.len());
    assert!(sqnr.iter().all(|&s| s > 10.0), "every layer keeps some signal: {sqnr:?}");
}

/// Flags and files that used to get a confusing answer or none.
#[test]
fn messages_say_what_is_wrong() {
    let model = sface_kiln();
    let dir = scratch("messages");
    let calib = repo("tests/data/calibration");
    let out = dir.join("out.kiln");
    // A negative fraction gets the range, not clap's "use '-- -1'" tip.
    fails(
        &[&"convert", &repo(SFACE), &"-o", &out, &"--calib", &calib, &"--prune", &"-1"],
        &["--prune takes a fraction from 0 to 1, not -1"],
    );
    // A same/different threshold that is no cosine.
    for t in ["nan", "2"] {
        let output = kiln(&[&"eval", &repo(SFACE), &model, &"--data", &calib, &"--pairs", &t]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "--pairs {t} was accepted");
        assert!(stderr.contains("is not a cosine similarity (from -1 to 1"), "{stderr}");
    }
    // An empty ONNX file beside a model: no "inf%".
    let empty = dir.join("empty.onnx");
    std::fs::write(&empty, b"").unwrap();
    let output = kiln(&[&"inspect", &model, &"--onnx", &empty]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("the ONNX file is empty") && !stdout.contains("inf%"), "{stdout}");
    // A truncated JPEG decodes with grey rows: warned about, by name.
    let photo = image::open(repo("tests/data/faces112/obama_00.png")).unwrap().to_rgb8();
    let jpeg = dir.join("whole.jpg");
    photo.save(&jpeg).unwrap();
    let bytes = std::fs::read(&jpeg).unwrap();
    let truncated = dir.join("truncated.jpg");
    std::fs::write(&truncated, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let output = kiln(&[&"run", &model, &truncated]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("truncated.jpg is a truncated JPEG (no end-of-image marker)"), "{stderr}");
    let output = kiln(&[&"run", &model, &jpeg]);
    assert!(!String::from_utf8_lossy(&output.stderr).contains("truncated JPEG"), "a whole JPEG warned about");
}
