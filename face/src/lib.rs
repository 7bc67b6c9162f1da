//! Face recognition on kiln, from a photo to a decision: letterbox the photo
//! into YuNet's input ([`letterbox`]), run the detector and decode its heads
//! ([`yunet`]), drop overlapping boxes ([`nms`]), align each face to the
//! ArcFace template ([`align`]), embed it with SFace ([`Embedder`]) and
//! compare embeddings ([`cosine`]).
//!
//! Board software uses it as it is: no tract, no OpenCV, `no_std` with
//! `alloc` (the default `std` feature only lets kiln-runtime open files).
//! [`Detector`] and [`Embedder`] allocate their buffers when they are made;
//! after that, detecting, aligning and embedding allocate nothing.
#![cfg_attr(not(feature = "std"), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

pub mod align;
mod detector;
mod embedder;
mod error;
mod face;
mod image;
pub mod letterbox;
pub mod nms;
pub mod yunet;

pub use align::{align, ARCFACE_112, CROP};
pub use detector::{DetectOptions, Detector, KilnYunet, Network};
pub use embedder::{cosine, Embedder, SFACE_SAME_PERSON};
pub use error::FaceError;
pub use face::Face;
pub use image::{ChannelOrder, ImageView};
