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

/// YuNet with `--precision auto` (defaults: target cosine 0.999, at most
/// 10% of the MACs in float), calibrated as [`yunet_int8`].
pub fn yunet_mixed() -> Model<'static> {
    static BYTES: OnceLock<AlignedBytes> = OnceLock::new();
    let bytes = BYTES.get_or_init(|| {
        let options = ImageOptions { bgr: true, letterbox: true, ..ImageOptions::default() };
        let precision = kiln_converter::precision::Options {
            float_layers: Vec::new(),
            auto: Some(kiln_converter::precision::Auto { target_cosine: 0.999, float_macs: 0.1 }),
            weights: kiln_runtime::DType::F16,
        };
        let recipe =
            kiln_converter::Recipe { shape: None, method: Method::MinMax, prune: None, precision: Some(&precision) };
        let path = super::model(YUNET);
        let done = kiln_converter::convert_with(&path, &super::detector_calibration(), &options, &recipe, |_, _| {});
        let report = done.as_ref().unwrap().precision.clone().unwrap();
        eprintln!(
            "YuNet --precision auto: float layers {:?}, {} of {} MACs; outputs' lowest cosine {:.5} (int8 {:.5})",
            report.float_layers,
            report.float_macs.0,
            report.float_macs.1,
            kiln_converter::precision::worst(&report.cosines),
            kiln_converter::precision::worst(&report.base)
        );
        AlignedBytes::copy_of(&done.unwrap().bytes)
    });
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
/// calibration crops; the aligned crop of every face that int8 YuNet
/// finds in the photos of other people that `models/fetch` puts into
/// `models/cache/calibration-photos` (what `kiln face detect PHOTO...
/// --crops DIR` writes); and the faces of the Solvay photo that are none of
/// the 15 people of the repository's Solvay crops (see
/// [`others_in_solvay_photo`]). Made once per test binary, in a folder
/// under the target directory.
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
        let save = |stem: &str, crops: Vec<image::RgbImage>| {
            for (i, crop) in crops.iter().enumerate() {
                crop.save(dir.join(format!("{stem}_{i:02}.png"))).unwrap();
            }
        };
        for photo in sorted_files(&photos) {
            save(&photo.file_stem().unwrap().to_string_lossy(), crops(&mut detector, &photo));
        }
        save("solvay_conference_1927_other", others_in_solvay_photo(&mut detector));
        dir
    })
    .clone()
}

/// A detected face is one of the people of the repository's crops when its
/// crop differs from theirs by at most this much (mean absolute difference
/// of the 0–255 values). Theirs were aligned by OpenCV, so the same face
/// differs a little: 2.4 to 17.7 measured on the Solvay photo, against
/// 29.8 and more between different people.
const SAME_FACE: f64 = 24.0;

/// The faces in the Solvay photo other than the 15 people of the
/// repository's crops (4 calibrate, 11 are held out): other people, from
/// the held-out faces' own photo, era and film. Each of the 15 must be
/// found exactly once, so that none of them slips into calibration.
fn others_in_solvay_photo(detector: &mut Detector<KilnYunet<'_>>) -> Vec<image::RgbImage> {
    let bundled: Vec<image::RgbImage> = [super::calibration_faces(), super::faces()]
        .iter()
        .flat_map(|dir| sorted_files(dir))
        .filter(|path| path.file_name().unwrap().to_string_lossy().starts_with("solvay_conference_1927_"))
        .map(|path| rgb(&path))
        .collect();
    assert_eq!(bundled.len(), 15, "the repository's Solvay crops");
    let difference = |a: &image::RgbImage, b: &image::RgbImage| {
        let sum: u64 = a.as_raw().iter().zip(b.as_raw()).map(|(&x, &y)| u64::from(x.abs_diff(y))).sum();
        sum as f64 / a.as_raw().len() as f64
    };
    let mut found = vec![0; bundled.len()];
    let mut others = Vec::new();
    for crop in crops(detector, &super::photo("solvay_conference_1927.jpg")) {
        match bundled.iter().position(|b| difference(&crop, b) <= SAME_FACE) {
            Some(person) => found[person] += 1,
            None => others.push(crop),
        }
    }
    assert_eq!(found, vec![1; bundled.len()], "each person of the Solvay crops found once in the photo");
    others
}

fn sorted_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    files
}

/// The aligned crop of each face in `photo`.
fn crops(detector: &mut Detector<KilnYunet<'_>>, photo: &Path) -> Vec<image::RgbImage> {
    let img = rgb(photo);
    let faces = detector.detect(&view(&img), &DetectOptions::default()).unwrap();
    let mut crops = Vec::new();
    let mut crop = [0u8; CROP * CROP * 3];
    for face in faces {
        if align(&view(&img), &face.landmarks, &mut crop).is_some() {
            crops.push(image::RgbImage::from_raw(CROP as u32, CROP as u32, crop.to_vec()).unwrap());
        }
    }
    crops
}
