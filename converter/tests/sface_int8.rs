//! SFace converted to int8 and run by the runtime, against the float model
//! run by tract: embeddings on faces the calibration never saw, same/different
//! decisions on every pair of the 24 crops, and the file size.

mod common;

use kiln_converter::calibrate::calibrate;
use kiln_converter::input::{self, ImageOptions, Sample};
use kiln_converter::ir::layout;
use kiln_converter::quantize::quantize;
use kiln_converter::reference::Reference;
use kiln_runtime::format::AlignedBytes;
use kiln_runtime::{Model, Session};

/// OpenCV's same-person threshold for SFace's cosine similarity.
const SAME_PERSON: f64 = 0.363;

/// Calibration uses 8 crops of 8 different people from the Solvay photo;
/// the other 16 (including all five Obama crops) are held out.
fn is_calibration(sample: &Sample) -> bool {
    let name = sample.path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    ["00", "01", "02", "03", "04", "05", "06", "07"].iter().any(|i| name == format!("solvay_conference_1927_{i}"))
}

fn person(sample: &Sample) -> String {
    let name = sample.path.file_stem().and_then(|s| s.to_str()).unwrap_or("").to_owned();
    if name.starts_with("obama") {
        "obama".into()
    } else {
        name
    }
}

#[test]
fn int8_sface_matches_fp32() {
    let onnx = common::sface();
    let (model, graph) = kiln_converter::load_ir(&onnx).unwrap();
    let options = ImageOptions::default();
    let faces = input::load_dir(&common::faces(), &model.input_shape, &options).unwrap();
    assert_eq!(faces.len(), 24);
    let calibration: Vec<Sample> = faces
        .iter()
        .filter(|s| is_calibration(s))
        .map(|s| Sample { path: s.path.clone(), values: s.values.clone() })
        .collect();
    assert_eq!(calibration.len(), 8);

    let ranges = calibrate(&model, &graph, &calibration, |_, _| {}).unwrap();
    let bytes = quantize(&graph, &ranges, Some(options.value_range())).unwrap();
    let onnx_size = std::fs::metadata(&onnx).unwrap().len() as f64;
    let ratio = bytes.len() as f64 / onnx_size;
    eprintln!("file {} B = {:.1}% of the ONNX file", bytes.len(), 100.0 * ratio);
    assert!(ratio <= 0.27, "the .kiln file is {:.1}% of the ONNX file", 100.0 * ratio);

    let file = AlignedBytes::copy_of(&bytes);
    let kiln = Model::from_bytes(&file).unwrap();
    let info = kiln.info();
    eprintln!("arena {} B, all activations {} B", info.arena_bytes, info.activation_bytes);
    assert!(info.arena_bytes < info.activation_bytes / 4, "the planner reuses memory: {info:?}");
    let mut session = Session::new(&kiln).unwrap();
    let reference = Reference::new(&model, &[model.graph().output[0].name.clone()]).unwrap();

    let mut float = Vec::new();
    let mut int8 = Vec::new();
    for face in &faces {
        float.push(reference.run(&face.values).unwrap().remove(0));
        let mut out = vec![0f32; 128];
        let nhwc = layout::nchw_to_nhwc(&face.values, &model.input_shape);
        session.run_f32(&[&nhwc], &mut [&mut out]).unwrap();
        int8.push(out);
    }

    let held_out: Vec<f64> = faces
        .iter()
        .enumerate()
        .filter(|(_, f)| !is_calibration(f))
        .map(|(i, _)| common::cosine(&int8[i], &float[i]))
        .collect();
    let mean = held_out.iter().sum::<f64>() / held_out.len() as f64;
    let min = held_out.iter().copied().fold(1.0, f64::min);
    eprintln!("held-out cosine int8 vs fp32: mean {mean:.5}, min {min:.5} over {} faces", held_out.len());
    assert!(mean >= 0.99, "mean cosine {mean:.5}");
    assert!(min >= 0.98, "min cosine {min:.5}");

    let (mut pairs, mut agree, mut same) = (0, 0, 0);
    for i in 0..faces.len() {
        for j in i + 1..faces.len() {
            let fp32 = common::cosine(&float[i], &float[j]) >= SAME_PERSON;
            let q = common::cosine(&int8[i], &int8[j]) >= SAME_PERSON;
            pairs += 1;
            agree += usize::from(fp32 == q);
            same += usize::from(person(&faces[i]) == person(&faces[j]));
        }
    }
    eprintln!("same/different decisions agree on {agree} of {pairs} pairs ({same} same-person pairs)");
    assert_eq!((pairs, same), (276, 10));
    assert_eq!(agree, pairs);
}
