//! The int8 face models as `kiln face` converts them, converted once per
//! test binary, and photos as kiln-face reads them.

use std::path::Path;
use std::sync::OnceLock;

use kiln_converter::calibrate::Method;
use kiln_converter::input::ImageOptions;
use kiln_face::{ChannelOrder, ImageView};
use kiln_runtime::format::AlignedBytes;
use kiln_runtime::Model;

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
