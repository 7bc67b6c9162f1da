//! Calibration ranges on SFace, checked against the IR's own f32 values: the
//! two agree only if every IR tensor is mapped to the right ONNX tensor (a
//! fused conv's output is its PRelu's, the folded input is the raw pixels).

mod common;

use kiln_converter::calibrate::{calibrate, Method};
use kiln_converter::input::{self, ImageOptions};
use kiln_converter::ir::{eval, layout};

#[test]
fn ranges_match_the_ir_values() {
    let (model, graph) = kiln_converter::load_ir(&common::sface()).unwrap();
    let faces = input::load_dir(&common::calibration_faces(), &model.input_shape, &ImageOptions::default()).unwrap();
    let samples = &faces[..3];
    let mut calls = 0;
    let ranges = calibrate(&model, &graph, samples, Method::MinMax, |done, total| {
        calls += 1;
        assert_eq!((done, total), (calls, 3));
    })
    .unwrap();

    // The input is raw RGB pixels, not the normalised values.
    let input = ranges[graph.input].unwrap();
    assert!(input.min >= 0.0 && input.min < 30.0 && input.max > 230.0 && input.max <= 255.0, "{input:?}");

    let mut expected: Vec<Option<(f32, f32)>> = vec![None; graph.tensors.len()];
    for s in samples {
        let values = eval::evaluate(&graph, &layout::nchw_to_nhwc(&s.values, &model.input_shape)).unwrap();
        for (e, v) in expected.iter_mut().zip(values) {
            if let Some(v) = v {
                let (lo, hi) = v.iter().fold(e.unwrap_or((f32::MAX, f32::MIN)), |(l, h), &x| (l.min(x), h.max(x)));
                *e = Some((lo, hi));
            }
        }
    }
    let mut negative_convs = 0;
    for t in graph.live_tensors() {
        let r = ranges[t].unwrap_or_else(|| panic!("tensor {t} has no range"));
        let (lo, hi) = expected[t].unwrap();
        let tol = 1e-3 * (hi - lo).max(1.0);
        assert!((r.min - lo).abs() <= tol && (r.max - hi).abs() <= tol, "tensor {t}: tract {r:?}, IR [{lo}, {hi}]");
        negative_convs += usize::from(r.min < 0.0 && r.max > 0.0);
    }
    // PRelu outputs keep negative values: a Relu-like range would mean the
    // pre-activation tensor was measured.
    assert!(negative_convs > 20, "only {negative_convs} tensors span zero");
    let out = ranges[graph.outputs[0]].unwrap();
    eprintln!("input {input:?}, embedding {out:?}");
}
