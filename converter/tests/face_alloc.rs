//! The face pipeline on a board: once its detector and embedder exist
//! (their buffers are the workspace) and have seen the largest photo,
//! detecting, aligning and embedding allocate nothing, on the real int8
//! models and photos.

mod common;
#[path = "../../runtime/tests/counting/mod.rs"]
mod counting;

use common::face::{rgb, sface_int8, view, yunet_int8};
use counting::measure;
use kiln_face::{align, DetectOptions, Detector, Embedder, FaceError, ImageView, KilnYunet, CROP};
use kiln_runtime::Session;

/// Detects the faces of `img`, aligns and embeds each; the number of faces.
fn recognise(
    detector: &mut Detector<KilnYunet<'_>>,
    embedder: &mut Embedder<'_>,
    img: &ImageView<'_>,
    crop: &mut [u8; CROP * CROP * 3],
    embedding: &mut [f32],
) -> Result<usize, FaceError> {
    let faces = detector.detect(img, &DetectOptions::default())?;
    for face in faces {
        align(img, &face.landmarks, crop).ok_or(FaceError::DegenerateLandmarks)?;
        embedder.embed(crop, embedding)?;
    }
    Ok(faces.len())
}

#[test]
fn detect_align_embed_allocate_nothing_in_steady_state() {
    let (yunet, sface) = (yunet_int8(), sface_int8());
    let mut detector = Detector::new(Session::new(&yunet).unwrap()).unwrap();
    let mut embedder = Embedder::new(Session::new(&sface).unwrap()).unwrap();
    let mut crop = [0u8; CROP * CROP * 3];
    let mut embedding = vec![0.0; embedder.dims()];
    // A crowd first: the left part of the Solvay photo, searched in tiles.
    // Then every photo, the crowd included, runs without an allocation.
    let solvay = rgb(&common::photo("solvay_conference_1927.jpg"));
    let crowd = image::imageops::crop_imm(&solvay, 0, 600, 1500, 1000).to_image();
    let photos = [&crowd, &rgb(&common::photo("obama.jpg")), &rgb(&common::photo("newton.png")), &crowd];
    let warm = recognise(&mut detector, &mut embedder, &view(photos[0]), &mut crop, &mut embedding).unwrap();
    assert_eq!(warm, 14);
    assert_eq!(measure(|| vec![0u8; 7]).1, 1, "the counting allocator is not installed");
    for img in photos {
        let (found, allocations, bytes) =
            measure(|| recognise(&mut detector, &mut embedder, &view(img), &mut crop, &mut embedding));
        let found = found.unwrap();
        eprintln!("{}x{}: {found} faces, {allocations} allocations, {bytes} bytes", img.width(), img.height());
        assert_eq!((allocations, bytes), (0, 0), "{found} faces");
        assert!(found >= 1 && embedding.iter().any(|&v| v != 0.0));
    }
}
