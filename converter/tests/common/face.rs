//! The int8 face models as `kiln face` converts them, converted once per
//! test binary, and photos as kiln-face reads them.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use kiln_converter::calibrate::Method;
use kiln_converter::input::ImageOptions;
use kiln_face::{align, ChannelOrder, DetectOptions, Detector, ImageView, KilnYunet, CROP};
use kiln_runtime::format::AlignedBytes;
use kiln_runtime::{Model, Session};

/// The YuNet ONNX file's name.
pub const YUNET: &str = "face_detection_yunet_2023mar.onnx";

fn converted(model: &Path, calib: &Path, options: &ImageOptions, ranges: Method) -> AlignedBytes {
    let (bytes, _) = kiln_converter::convert(model, calib, options, ranges, |_, _| {}).unwrap();
    AlignedBytes::copy_of(&bytes)
}

/// YuNet in int8, calibrated with min/max ranges on letterboxed BGR photos.
pub fn yunet_int8() -> Model<'static> {
    static BYTES: OnceLock<AlignedBytes> = OnceLock::new();
    let options = ImageOptions { bgr: true, letterbox: true, ..ImageOptions::default() };
    let bytes =
        BYTES.get_or_init(|| converted(&super::model(YUNET), &super::detector_calibration(), &options, Method::MinMax));
    Model::from_bytes(bytes).unwrap()
}

/// SFace in int8, calibrated with MSE ranges on face crops.
pub fn sface_int8() -> Model<'static> {
    static BYTES: OnceLock<AlignedBytes> = OnceLock::new();
    let bytes = BYTES
        .get_or_init(|| converted(&super::sface(), &super::calibration_faces(), &ImageOptions::default(), Method::Mse));
    Model::from_bytes(bytes).unwrap()
}

/// A photo or crop, decoded to RGB.
pub fn rgb(path: &Path) -> image::RgbImage {
    image::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).to_rgb8()
}

/// `img` as kiln-face sees it.
pub fn view(img: &image::RgbImage) -> ImageView<'_> {
    ImageView::new(img.width() as usize, img.height() as usize, ChannelOrder::Rgb, img.as_raw()).unwrap()
}

/// The faces that SFace's pruning calibrates on: the repository's 8
/// calibration crops, and the aligned crop of every face that int8 YuNet
/// finds in the photos of other people that `models/fetch` puts into
/// `models/cache/calibration-photos` (what `kiln face detect PHOTO...
/// --crops DIR` writes). Made once per test binary, in a folder under the
/// target directory.
pub fn pruning_calibration() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let photos = super::root().join("models/cache/calibration-photos");
        assert!(photos.is_dir(), "{} is missing: run `models/fetch` at the workspace root first", photos.display());
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("pruning-calibration");
        // Crops of an earlier run may come from other photos.
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for crop in sorted_files(&super::calibration_faces()) {
            std::fs::copy(&crop, dir.join(crop.file_name().unwrap())).unwrap();
        }
        let yunet = yunet_int8();
        let mut detector = Detector::new(Session::new(&yunet).unwrap()).unwrap();
        for photo in sorted_files(&photos) {
            write_crops(&mut detector, &photo, &dir);
        }
        dir
    })
    .clone()
}

fn sorted_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    files
}

/// Writes the aligned crop of each face in `photo` to `dir` as
/// `STEM_NN.png`.
fn write_crops(detector: &mut Detector<KilnYunet<'_>>, photo: &Path, dir: &Path) {
    let img = rgb(photo);
    let stem = photo.file_stem().unwrap().to_string_lossy();
    let faces = detector.detect(&view(&img), &DetectOptions::default()).unwrap();
    let mut crop = [0u8; CROP * CROP * 3];
    for (i, face) in faces.iter().enumerate() {
        if align(&view(&img), &face.landmarks, &mut crop).is_some() {
            let out = image::RgbImage::from_raw(CROP as u32, CROP as u32, crop.to_vec()).unwrap();
            out.save(dir.join(format!("{stem}_{i:02}.png"))).unwrap();
        }
    }
}
