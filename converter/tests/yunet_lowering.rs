//! YuNet (face detector) exercises the ops SFace lacks: Relu fusion,
//! MaxPool, Resize, residual Add, and Transpose/Reshape/Sigmoid heads that
//! leave NHWC. Its 12 outputs from the IR in f32 must match tract's.

mod common;

use kiln_converter::calibrate::{calibrate, Method};
use kiln_converter::input::{self, ImageOptions};
use kiln_converter::ir::{eval, layout};
use kiln_converter::reference::Reference;

#[test]
fn ir_matches_tract_on_a_photo() {
    let (model, graph) = kiln_converter::load_ir(&common::model("face_detection_yunet_2023mar.onnx")).unwrap();
    // A face crop, upscaled to the detector's 640x640 input.
    let photo = common::calibration_faces().join("astronaut_00.png");
    let options = ImageOptions { bgr: true, ..ImageOptions::default() };
    let sample = input::load_file(&photo, &model.input_shape, &options).unwrap();
    let names: Vec<String> = model.graph().output.iter().map(|o| o.name.clone()).collect();
    let expected = Reference::new(&model, &names).unwrap().run(&sample.values).unwrap();
    let got = eval::run(&graph, &layout::nchw_to_nhwc(&sample.values, &model.input_shape)).unwrap();
    assert_eq!(got.len(), 12);
    for ((name, g), e) in names.iter().zip(&got).zip(&expected) {
        let cos = common::cosine(g, e);
        let max_diff = g.iter().zip(e).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        eprintln!("{name}: {} values, cosine {cos:.9}, max |diff| {max_diff:.2e}", g.len());
        assert!(cos >= 0.9999 && max_diff < 1e-4, "output {name} differs from tract");
    }
    // Calibration finds an ONNX counterpart (or a layout source) for every
    // tensor of this more varied graph too.
    let ranges = calibrate(&model, &graph, &[sample], Method::MinMax, |_, _| {}).unwrap();
    for t in graph.live_tensors() {
        let r = ranges[t].unwrap_or_else(|| panic!("tensor {t} has no range"));
        assert!(r.min <= r.max && r.max.is_finite(), "tensor {t}: {r:?}");
    }
}

#[test]
fn heads_need_no_transpose_and_relus_fuse() {
    let (model, graph) = kiln_converter::load_ir(&common::model("face_detection_yunet_2023mar.onnx")).unwrap();
    let count = |name: &str| graph.nodes.iter().filter(|n| n.op.name() == name).count();
    let onnx = |op: &str| model.graph().node.iter().filter(|n| n.op_type == op).count();
    assert_eq!(count("Conv2d"), onnx("Conv"));
    assert_eq!(count("Clamp"), 0, "every Relu follows a conv and fuses");
    assert_eq!(count("Transpose"), 0, "head transposes cancel with NHWC");
    assert_eq!((count("Reshape"), count("Sigmoid")), (12, 6));
    assert_eq!((count("MaxPool"), count("Resize"), count("Add")), (4, 2, 2));
    assert_eq!(graph.nodes.len(), onnx("Conv") + 26);
}
