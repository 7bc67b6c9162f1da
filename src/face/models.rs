//! Where `kiln face` finds its two models: given paths, or `.kiln` files in
//! the models folder, converted from the ONNX files that `models/fetch`
//! puts there the first time they are needed.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use clap::Args;
use kiln_converter::calibrate::Method;
use kiln_converter::input::ImageOptions;

use crate::convert::convert;

/// The detector, the embedder and where to find them.
#[derive(Args, Clone, Debug)]
pub struct ModelArgs {
    /// The YuNet face detector (.kiln). Default: face_detection_yunet_2023mar.kiln
    /// in the models folder, converted from the .onnx there on first use.
    #[arg(long)]
    detector: Option<PathBuf>,
    /// The SFace embedder (.kiln). Default: face_recognition_sface_2021dec.kiln
    /// in the models folder, converted from the .onnx there on first use.
    #[arg(long)]
    embedder: Option<PathBuf>,
    /// The models folder: $KILN_MODELS, else models/cache (filled by `models/fetch`).
    #[arg(long, env = "KILN_MODELS", default_value = "models/cache")]
    models: PathBuf,
}

/// A model `kiln face` can convert itself: its ONNX file and how to
/// calibrate it.
struct Known {
    stem: &'static str,
    /// Calibration photos, relative to the repository root (the current folder).
    calib: &'static str,
    options: ImageOptions,
    /// Range method: min/max for YuNet, whose small `obj_32` head loses
    /// (SQNR 17.8 → 11.3 dB on Solvay) when MSE clips it; MSE for SFace.
    ranges: Method,
}

const YUNET: &str = "face_detection_yunet_2023mar";
const SFACE: &str = "face_recognition_sface_2021dec";

impl ModelArgs {
    /// The detector's `.kiln` path, converting it first if needed.
    pub fn detector(&self) -> Result<PathBuf> {
        let options = ImageOptions { bgr: true, letterbox: true, ..ImageOptions::default() };
        let known = Known { stem: YUNET, calib: "tests/data/detector-calibration", options, ranges: Method::MinMax };
        self.resolve(self.detector.as_deref(), &known)
    }

    /// The embedder's `.kiln` path, converting it first if needed.
    pub fn embedder(&self) -> Result<PathBuf> {
        let options = ImageOptions::default();
        let known = Known { stem: SFACE, calib: "tests/data/calibration", options, ranges: Method::Mse };
        self.resolve(self.embedder.as_deref(), &known)
    }

    /// The detector's ONNX file in the models folder (for tract fp32).
    pub fn detector_onnx(&self) -> Result<PathBuf> {
        self.onnx(YUNET)
    }

    /// The embedder's ONNX file in the models folder (for tract fp32).
    pub fn embedder_onnx(&self) -> Result<PathBuf> {
        self.onnx(SFACE)
    }

    fn onnx(&self, stem: &str) -> Result<PathBuf> {
        let onnx = self.models.join(format!("{stem}.onnx"));
        if !onnx.exists() {
            bail!("{} does not exist: run `models/fetch` at the repository root, or give --models", onnx.display());
        }
        Ok(onnx)
    }

    fn resolve(&self, given: Option<&Path>, known: &Known) -> Result<PathBuf> {
        if let Some(path) = given {
            return Ok(path.to_owned());
        }
        let kiln = self.models.join(format!("{}.kiln", known.stem));
        if kiln.exists() {
            return Ok(kiln);
        }
        let onnx = self.models.join(format!("{}.onnx", known.stem));
        if !onnx.exists() {
            bail!(
                "neither {} nor {} exists: run `models/fetch` at the repository root, or give the model's path",
                kiln.display(),
                onnx.display()
            );
        }
        let calib = Path::new(known.calib);
        if !calib.is_dir() {
            bail!(
                "{} is missing and its calibration photos ({}) are not here: run kiln from the repository \
                 root, or convert it yourself with `kiln convert {} -o {} --calib DIR`",
                kiln.display(),
                calib.display(),
                onnx.display(),
                kiln.display()
            );
        }
        log::info!("converting {} to {} (once), calibrated on {}", onnx.display(), kiln.display(), calib.display());
        let (bytes, _) = convert(&onnx, calib, &known.options, known.ranges)?;
        // Written whole or not at all: a concurrent run never reads half a file.
        crate::output::write(&kiln, &bytes)?;
        Ok(kiln)
    }
}
