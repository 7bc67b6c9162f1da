//! What can go wrong between a photo and an embedding.

use alloc::string::String;
use core::fmt;

/// An error of the face pipeline; each says what to do about it.
#[derive(Debug)]
#[non_exhaustive]
pub enum FaceError {
    /// The runtime refused the model or a buffer.
    Runtime(kiln_runtime::Error),
    /// The model is not a YuNet face detector; the message says why.
    NotADetector(String),
    /// The model is not a face embedder (112 × 112 RGB in, one vector
    /// out); the message says why.
    NotAnEmbedder(String),
    /// The pixel buffer does not hold `width × height × 3` bytes.
    ImageSize {
        /// Width given.
        width: usize,
        /// Height given.
        height: usize,
        /// Bytes given.
        bytes: usize,
    },
    /// The landmarks all coincide, so no alignment exists.
    DegenerateLandmarks,
    /// A [`crate::Network`] other than kiln's failed; its message.
    Network(String),
    /// A [`crate::DetectOptions`] value out of its range; the message says which.
    Options(String),
}

impl From<kiln_runtime::Error> for FaceError {
    fn from(e: kiln_runtime::Error) -> Self {
        FaceError::Runtime(e)
    }
}

impl fmt::Display for FaceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FaceError::Runtime(e) => write!(f, "{e}"),
            FaceError::NotADetector(why) => write!(
                f,
                "the model is not a YuNet face detector ({why}); give a .kiln converted from \
                 face_detection_yunet_2023mar.onnx"
            ),
            FaceError::NotAnEmbedder(why) => write!(
                f,
                "the model is not a face embedder ({why}); give a .kiln converted from \
                 face_recognition_sface_2021dec.onnx"
            ),
            FaceError::ImageSize { width, height, bytes } => write!(
                f,
                "a {width}x{height} RGB image needs {} bytes, the buffer holds {bytes}",
                width.saturating_mul(*height).saturating_mul(3)
            ),
            FaceError::Network(why) => write!(f, "the detector's network failed: {why}"),
            FaceError::Options(why) => write!(f, "invalid detection options: {why}"),
            FaceError::DegenerateLandmarks => {
                write!(f, "the face's five landmarks coincide, so it cannot be aligned")
            }
        }
    }
}

impl core::error::Error for FaceError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            FaceError::Runtime(e) => Some(e),
            _ => None,
        }
    }
}
