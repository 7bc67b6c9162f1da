//! The lowered, folded and fused IR of SFace, evaluated in plain f32, must
//! reproduce tract's embedding of the original ONNX model: this pins NHWC
//! layout, BatchNorm folding, the input-normalisation fold (with its padding
//! value), PRelu fusion and the Flatten→Gemm column permutation.

mod common;

use kiln_converter::input::{self, ImageOptions};
use kiln_converter::ir::{eval, layout, Op};
use kiln_converter::reference::Reference;

#[test]
fn ir_matches_tract_on_real_faces() {
    let (model, graph) = kiln_converter::load_ir(&common::sface()).unwrap();

    // The structure the passes must leave: raw pixels in, convs carrying
    // BatchNorm and PRelu, one FC, no normalisation or BN op left.
    let count = |name: &str| graph.nodes.iter().filter(|n| n.op.name() == name).count();
    assert_eq!(count("Conv2d"), 27);
    assert_eq!(count("FullyConnected"), 1);
    assert_eq!(count("Transpose"), 0, "Flatten→Gemm kept a layout transpose");
    let prelu_convs = graph
        .nodes
        .iter()
        .filter(|n| matches!(&n.op, Op::Conv2d { activation, .. } if activation.alpha.is_some()))
        .count();
    let onnx_prelus = model.graph().node.iter().filter(|n| n.op_type == "PRelu").count();
    assert_eq!((prelu_convs, onnx_prelus), (27, 27), "every PRelu fuses into its conv");
    assert_eq!(count("Reshape"), 1);
    assert_eq!(graph.tensors.len(), graph.nodes.len() + 1, "dead tensors compacted away");
    assert_eq!(graph.nodes.len(), 29, "BatchNorms, PRelus, normalisation and Dropout all folded");
    let first = &graph.nodes[0];
    assert!(matches!(first.op, Op::Conv2d { pad_value, .. } if pad_value == 127.5), "{:?}", first.op.name());
    assert_eq!(first.inputs, vec![graph.input]);

    let reference = Reference::new(&model, &[model.graph().output[0].name.clone()]).unwrap();
    let samples = input::load_dir(&common::faces(), &model.input_shape, &ImageOptions::default()).unwrap();
    let mut worst = 1.0f64;
    for sample in samples.iter().step_by(4) {
        let expected = reference.run(&sample.values).unwrap().remove(0);
        let nhwc = layout::nchw_to_nhwc(&sample.values, &model.input_shape);
        let got = eval::run(&graph, &nhwc).unwrap().remove(0);
        let cos = common::cosine(&got, &expected);
        let max_diff = got.iter().zip(&expected).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        eprintln!("{}: cosine {cos:.9}, max |diff| {max_diff:.2e}", sample.path.display());
        worst = worst.min(cos);
    }
    eprintln!("worst cosine IR vs tract: {worst:.9}");
    assert!(worst >= 0.99999, "IR embedding differs from tract's: cosine {worst}");
}
