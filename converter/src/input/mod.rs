//! Calibration and evaluation inputs: images (PNG/JPEG) or `.npy` tensors,
//! each turned into one f32 tensor in the model's ONNX layout (NCHW).

mod images;
mod npy;

use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};

pub use images::{decode as decode_image, ImageOptions};
pub use npy::encode as encode_npy;

/// One input: the file it came from and its values (NCHW, as ONNX expects).
pub struct Sample {
    /// Source file.
    pub path: PathBuf,
    /// Values in the model's ONNX input layout.
    pub values: Vec<f32>,
}

/// Fails unless `path` is a regular file (or a link to one), naming it as
/// `what`: opening a FIFO named `face.png` would wait forever for a writer,
/// and a folder or device is no file to read.
pub fn regular_file(path: &Path, what: &str) -> Result<()> {
    let Ok(meta) = std::fs::metadata(path) else {
        bail!("{what} {} does not exist", path.display());
    };
    ensure!(!meta.is_dir(), "{what} {} is a folder, not a file", path.display());
    ensure!(
        meta.is_file(),
        "{what} {} is not a regular file (a FIFO, socket or device): kiln reads regular files only",
        path.display()
    );
    Ok(())
}

/// Reads one file: `.npy` as is (f32, the model's element count), anything
/// else as an image preprocessed by `options` to `shape` (`[1, 3, H, W]`).
pub fn load_file(path: &Path, shape: &[usize], options: &ImageOptions) -> Result<Sample> {
    regular_file(path, "input file")?;
    let values = if is_npy(path) { npy::read(path, shape)? } else { images::read(path, shape, options)? };
    Ok(Sample { path: path.to_owned(), values })
}

/// Reads every `.npy`, `.png`, `.jpg` and `.jpeg` file of `dir`, sorted by
/// name so that runs are reproducible. A missing folder, a folder without
/// such files and an unreadable file are errors that name the path.
pub fn load_dir(dir: &Path, shape: &[usize], options: &ImageOptions) -> Result<Vec<Sample>> {
    list_dir(dir)?.iter().map(|p| load_file(p, shape, options)).collect()
}

/// The files [`load_dir`] reads, in its order.
pub fn list_dir(dir: &Path) -> Result<Vec<PathBuf>> {
    ensure!(dir.is_dir(), "input folder {} does not exist (or is not a folder)", dir.display());
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()
        .with_context(|| format!("cannot list {}", dir.display()))?;
    files.retain(|p| {
        let regular = std::fs::metadata(p).is_ok_and(|m| m.is_file());
        let input = is_npy(p) || images::is_image(p);
        if input && !regular {
            log::warn!("skipping {}: not a regular file (kiln reads regular files only)", p.display());
        }
        input && regular
    });
    files.sort();
    if files.is_empty() {
        bail!("input folder {} holds no .png, .jpg, .jpeg or .npy file: put calibration inputs there", dir.display());
    }
    Ok(files)
}

fn is_npy(path: &Path) -> bool {
    path.extension().is_some_and(|e| e.eq_ignore_ascii_case("npy"))
}
