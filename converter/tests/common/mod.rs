//! Where the tests find real models and faces. Missing data fails the test
//! with the command that obtains it: a test that silently skips proves nothing.
// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::path::PathBuf;

pub mod face;
pub mod onnx;
pub mod text;

/// The workspace root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A model from `$KILN_MODELS` (default `models/cache` at the workspace root).
pub fn model(name: &str) -> PathBuf {
    let dir = std::env::var_os("KILN_MODELS").map_or_else(|| root().join("models/cache"), PathBuf::from);
    let path = dir.join(name);
    assert!(path.exists(), "{} is missing: run `models/fetch` at the workspace root first", path.display());
    path
}

/// The SFace face-recognition model.
pub fn sface() -> PathBuf {
    model("face_recognition_sface_2021dec.onnx")
}

/// A folder of the repository's test data, or `$var` when set.
fn data_dir(var: &str, default: &str) -> PathBuf {
    let dir = std::env::var_os(var).map_or_else(|| root().join(default), PathBuf::from);
    assert!(dir.is_dir(), "test data not found at {}: set {var} to the folder {default} of a checkout", dir.display());
    dir
}

/// The 16 aligned 112x112 face crops that accuracy is measured on
/// (`$KILN_FACES`, default `tests/data/faces112`).
pub fn faces() -> PathBuf {
    data_dir("KILN_FACES", "tests/data/faces112")
}

/// The 8 face crops that calibration uses (`$KILN_CALIBRATION`, default
/// `tests/data/calibration`).
pub fn calibration_faces() -> PathBuf {
    data_dir("KILN_CALIBRATION", "tests/data/calibration")
}

/// The photos that YuNet is calibrated on (`$KILN_DETECTOR_CALIBRATION`,
/// default `tests/data/detector-calibration`).
pub fn detector_calibration() -> PathBuf {
    data_dir("KILN_DETECTOR_CALIBRATION", "tests/data/detector-calibration")
}

/// A photo that `models/fetch` put into `models/cache/photos`.
pub fn photo(name: &str) -> PathBuf {
    let path = root().join("models/cache/photos").join(name);
    assert!(path.exists(), "{} is missing: run `models/fetch` at the workspace root first", path.display());
    path
}

pub use kiln_converter::metrics::cosine;

/// OpenCV's same-person threshold for SFace's cosine similarity.
pub const SAME_PERSON: f64 = 0.363;

/// Who a face crop shows: its file name before `_NN`, the Obama photos
/// being one person.
pub fn person(path: &std::path::Path) -> String {
    let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or("").to_owned();
    if name.starts_with("obama") {
        "obama".into()
    } else {
        name
    }
}

/// Same/different decisions on every pair of `faces` at [`SAME_PERSON`]:
/// `(pairs, pairs where `test` decides as `reference` does, same-person
/// pairs)`; each disagreement is printed.
pub fn pair_agreement(faces: &[&std::path::Path], reference: &[Vec<f32>], test: &[Vec<f32>]) -> (usize, usize, usize) {
    let (disagree, pairs) = kiln_converter::metrics::disagreeing_pairs(reference, test, SAME_PERSON);
    for &(i, j) in &disagree {
        eprintln!(
            "  disagree: {} ~ {}: reference {:.4}, test {:.4}",
            faces[i].display(),
            faces[j].display(),
            cosine(&reference[i], &reference[j]),
            cosine(&test[i], &test[j])
        );
    }
    let same = (0..faces.len()).flat_map(|i| (i + 1..faces.len()).map(move |j| (i, j)));
    let same = same.filter(|&(i, j)| person(faces[i]) == person(faces[j])).count();
    (pairs, pairs - disagree.len(), same)
}
