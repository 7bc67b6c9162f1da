//! The face pipeline end to end on real photos, int8 against the float
//! models run by tract: YuNet's heads, the faces it finds, the aligned
//! crops (against OpenCV's crops of the same photos) and same/different
//! decisions. Photos: `models/fetch` copies them into models/cache/photos.
//! YuNet is calibrated on tests/data/detector-calibration (astronaut,
//! biden, gauss, newton); Solvay and the five Obama photos are held out.

mod common;

use common::face::{rgb, sface_int8, view, yunet_int8, yunet_mixed, YUNET};
use kiln_converter::import::OnnxModel;
use kiln_converter::reference::FloatYunet;
use kiln_face::letterbox::letterbox;
use kiln_face::yunet::HEAD_NAMES;
use kiln_face::{
    align, cosine, ChannelOrder, DetectOptions, Detector, Embedder, Face, ImageView, CROP, SFACE_SAME_PERSON,
};
use kiln_runtime::{Model, Session};

const SIDE: usize = 640;

/// The photos with one face each.
const SINGLE: [&str; 9] = [
    "astronaut.png",
    "biden.jpg",
    "gauss.png",
    "newton.png",
    "obama.jpg",
    "obama2.jpg",
    "obama3.jpg",
    "obama_partial_face.jpg",
    "obama_partial_face2.jpg",
];
const SOLVAY: &str = "solvay_conference_1927.jpg";

/// The letterboxed BGR detector input (NHWC) of a photo.
fn detector_input(img: &ImageView<'_>) -> (Vec<f32>, kiln_face::letterbox::Letterbox) {
    let mut input = vec![0.0; SIDE * SIDE * 3];
    let fit = letterbox(img, &mut input, SIDE, SIDE, ChannelOrder::Bgr, &mut Vec::new());
    (input, fit)
}

fn float_yunet() -> FloatYunet {
    FloatYunet::new(&OnnxModel::load(&common::model(YUNET)).unwrap()).unwrap()
}

fn sqnr_db(reference: &[f32], got: &[f32]) -> f64 {
    let signal: f64 = reference.iter().map(|&r| f64::from(r).powi(2)).sum();
    let noise: f64 = reference.iter().zip(got).map(|(&r, &g)| (f64::from(r) - f64::from(g)).powi(2)).sum();
    10.0 * (signal / noise).log10()
}

#[test]
fn int8_heads_match_tract_on_a_held_out_photo() {
    let img = rgb(&common::photo(SOLVAY));
    let (input, _) = detector_input(&view(&img));
    let expected = float_yunet().heads(&input).unwrap();
    let model = yunet_int8();
    let mut session = Session::new(&model).unwrap();
    session.set_input_f32(0, &input).unwrap();
    session.run();
    for (name, e) in HEAD_NAMES.iter().zip(&expected) {
        let index = model.outputs().position(|o| o.name == *name).unwrap();
        let mut got = vec![0.0; e.len()];
        session.output_f32(index, &mut got).unwrap();
        let (cos, sqnr) = (common::cosine(&got, e), sqnr_db(e, &got));
        eprintln!("{name}: cosine {cos:.5}, SQNR {sqnr:.1} dB");
        assert!(cos >= 0.99 && sqnr >= 15.0, "head {name} of int8 YuNet is far from tract's f32");
    }
}

#[test]
fn int8_finds_the_faces_float_finds_in_the_solvay_photo() {
    let img = rgb(&common::photo(SOLVAY));
    let mut float = Detector::with_network(float_yunet(), SIDE, SIDE);
    let float = float.detect(&view(&img), &DetectOptions::default()).unwrap().to_vec();
    let model = yunet_int8();
    let mut detector = Detector::new(Session::new(&model).unwrap()).unwrap();
    let int8 = detector.detect(&view(&img), &DetectOptions::default()).unwrap().to_vec();
    let mut unmatched: Vec<&Face> = int8.iter().collect();
    let mut found = 0;
    for f in &float {
        let best = unmatched.iter().enumerate().max_by(|a, b| f.iou(a.1).total_cmp(&f.iou(b.1)));
        if let Some((i, g)) = best.filter(|(_, g)| f.iou(g) >= 0.5) {
            eprintln!("f32 score {:.3} ~ int8 {:.3}, IoU {:.3}", f.score, g.score, f.iou(g));
            unmatched.remove(i);
            found += 1;
        } else {
            eprintln!("f32 face at ({:.0}, {:.0}) score {:.3}: no int8 match", f.x, f.y, f.score);
        }
    }
    eprintln!("f32 finds {}, int8 finds {} ({found} matched, {} extra)", float.len(), int8.len(), unmatched.len());
    // The photo shows 29 people; f32 YuNet finds all of them.
    assert_eq!(float.len(), 29, "f32 YuNet finds {} faces", float.len());
    assert!(
        found + 1 >= float.len() && unmatched.len() <= 1,
        "int8 finds {found} of the {} faces f32 finds, with {} extra",
        float.len(),
        unmatched.len()
    );
}

/// Each single-face photo's one face, detected by int8 YuNet.
fn single_faces() -> Vec<(&'static str, image::RgbImage, Face)> {
    let model = yunet_int8();
    let mut detector = Detector::new(Session::new(&model).unwrap()).unwrap();
    SINGLE
        .iter()
        .map(|&name| {
            let img = rgb(&common::photo(name));
            let faces = detector.detect(&view(&img), &DetectOptions::default()).unwrap().to_vec();
            assert_eq!(faces.len(), 1, "{name}: int8 YuNet finds {} faces: {faces:?}", faces.len());
            (name, img, faces[0])
        })
        .collect()
}

fn embed_crop(embedder: &mut Embedder<'_>, crop: &[u8; CROP * CROP * 3]) -> Vec<f32> {
    let mut e = vec![0.0; embedder.dims()];
    embedder.embed(crop, &mut e).unwrap();
    e
}

/// The embedding of `face` in `img`, aligned by kiln-face.
fn embed(embedder: &mut Embedder<'_>, img: &ImageView<'_>, face: &Face) -> Vec<f32> {
    let mut crop = [0u8; CROP * CROP * 3];
    align(img, &face.landmarks, &mut crop).unwrap();
    embed_crop(embedder, &crop)
}

/// OpenCV made the reference crops with `FaceDetectorYN` on each whole
/// photo at its own size and `FaceRecognizerSF::alignCrop` (reproduced bit
/// for bit with opencv-python). Given OpenCV's landmarks, kiln's warp differs
/// from its crops by at most 2 levels per pixel; tract's f32 YuNet through
/// kiln's detection gives mean 0.9976 / min 0.9760 here; int8 YuNet
/// measured mean 0.9823 / min 0.9425 (its landmarks stray by 0.4–10 pixels:
/// near-tied anchors swap places under NMS).
#[test]
fn aligned_crops_embed_like_opencvs_crops() {
    let (mean, min) = crops_against_opencv(&yunet_int8(), "int8 YuNet");
    assert!(mean >= 0.98, "kiln's aligned crops embed at mean cosine {mean:.4} to OpenCV's");
    assert!(min >= 0.9, "a crop embeds at cosine {min:.4} to OpenCV's: a wrong face or misplaced landmarks");
}

/// With `--precision auto`, YuNet's layers whose float form raises its
/// outputs' cosine to fp32 the most run in float, and it still finds every
/// face of the Solvay photo. Its crops are measured, not asserted: the
/// outputs' cosine over whole maps (background included) rises from 0.98419
/// to 0.99241, yet the crops embed at mean 0.9684 / min 0.7158 against
/// int8's 0.9823 / 0.9425 — the objective does not weigh the landmarks of
/// the faces found, which is what the crops depend on (issue 18 stays open
/// on this).
#[test]
fn mixed_precision_yunet_finds_every_solvay_face() {
    let model = yunet_mixed();
    let floats = model.ops().filter(|(kind, ..)| kind.is_float()).count();
    assert!(floats > 0, "auto precision chose no float layer");
    crops_against_opencv(&model, "mixed-precision YuNet");
    let img = rgb(&common::photo(SOLVAY));
    let mut detector = Detector::new(Session::new(&model).unwrap()).unwrap();
    let solvay = detector.detect(&view(&img), &DetectOptions::default()).unwrap().len();
    eprintln!("mixed-precision YuNet ({floats} float ops) finds {solvay} faces in the Solvay photo");
    assert_eq!(solvay, 29, "the Solvay photo shows 29 people");
}

/// The mean and lowest cosine of SFace's embeddings of kiln's aligned
/// crops (faces found by `detector_model`) against OpenCV's crops of the
/// same faces, checking that the 15 Solvay crops match 15 distinct faces.
fn crops_against_opencv(detector_model: &Model<'_>, what: &str) -> (f64, f32) {
    let model = sface_int8();
    let mut embedder = Embedder::new(Session::new(&model).unwrap()).unwrap();
    let ours: Vec<(String, Vec<f32>)> = single_faces()
        .iter()
        .map(|(name, img, face)| (name.split('.').next().unwrap().to_owned(), embed(&mut embedder, &view(img), face)))
        .collect();
    let solvay = rgb(&common::photo(SOLVAY));
    let mut detector = Detector::new(Session::new(detector_model).unwrap()).unwrap();
    let solvay_faces = detector.detect(&view(&solvay), &DetectOptions::default()).unwrap().to_vec();
    let solvay_embeddings: Vec<Vec<f32>> =
        solvay_faces.iter().map(|f| embed(&mut embedder, &view(&solvay), f)).collect();

    let mut crops: Vec<_> = [common::faces(), common::calibration_faces()]
        .iter()
        .flat_map(|d| std::fs::read_dir(d).unwrap().map(|e| e.unwrap().path()))
        .collect();
    crops.sort();
    let (mut sum, mut min, mut matched_solvay) = (0.0, f32::MAX, Vec::new());
    for path in &crops {
        let crop = rgb(path);
        let theirs = embed_crop(&mut embedder, crop.as_raw().as_slice().try_into().unwrap());
        let stem = path.file_stem().unwrap().to_string_lossy();
        let photo = stem.rsplit_once('_').unwrap().0;
        let cos = if photo == "solvay_conference_1927" {
            // Which of the 29 faces a crop shows is not recorded: take the
            // closest, and check below that no two crops take the same one.
            let (i, best) = solvay_embeddings
                .iter()
                .map(|e| cosine(e, &theirs))
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(&b.1))
                .unwrap();
            matched_solvay.push(i);
            best
        } else {
            let (_, e) = ours.iter().find(|(name, _)| name == photo).unwrap();
            cosine(e, &theirs)
        };
        eprintln!("{stem}: cosine {cos:.4}");
        sum += f64::from(cos);
        min = min.min(cos);
    }
    let mean = sum / crops.len() as f64;
    eprintln!("{what}: cosine over {} crops: mean {mean:.4}, min {min:.4}", crops.len());
    matched_solvay.sort();
    matched_solvay.dedup();
    assert_eq!((crops.len(), matched_solvay.len()), (24, 15));
    (mean, min)
}

#[test]
fn same_person_exactly_for_the_obama_pairs() {
    let model = sface_int8();
    let mut embedder = Embedder::new(Session::new(&model).unwrap()).unwrap();
    let faces = single_faces();
    let embeddings: Vec<Vec<f32>> = faces.iter().map(|(_, img, f)| embed(&mut embedder, &view(img), f)).collect();
    let (mut same, mut different) = (0, 0);
    for i in 0..faces.len() {
        for j in i + 1..faces.len() {
            let c = cosine(&embeddings[i], &embeddings[j]);
            let both_obama = faces[i].0.starts_with("obama") && faces[j].0.starts_with("obama");
            eprintln!("{} ~ {}: {c:.4}", faces[i].0, faces[j].0);
            assert_eq!(c >= SFACE_SAME_PERSON, both_obama, "{} ~ {}: cosine {c:.4}", faces[i].0, faces[j].0);
            if both_obama {
                same += 1;
            } else {
                different += 1;
            }
        }
    }
    assert_eq!((same, different), (10, 26));
}
