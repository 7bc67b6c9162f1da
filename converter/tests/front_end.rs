//! One small graph per front-end feature, each as exporters write it: the
//! IR must compute what tract computes on the ONNX model, and the int8
//! model must follow it.

mod common;

use std::path::{Path, PathBuf};

use common::onnx::{self, floats, int, int64s, ints, node, string, tensor_info};
use kiln_converter::calibrate::Method;
use kiln_converter::import::{InputShape, OnnxModel};
use kiln_converter::input::{encode_npy, ImageOptions};
use kiln_converter::ir::{eval, layout};
use kiln_converter::metrics::cosine;
use kiln_converter::reference::Reference;
use kiln_runtime::format::AlignedBytes;
use kiln_runtime::{Model, Session};
use tract_onnx::pb::{NodeProto, TensorProto};

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("front_end").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Deterministic values in -1..1.
fn values(n: usize, seed: u32) -> Vec<f32> {
    let mut state = seed.wrapping_mul(2_654_435_761).max(1);
    (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            (state % 2001) as f32 / 1000.0 - 1.0
        })
        .collect()
}

/// The IR layout of an ONNX-layout tensor (rank 4 is NCHW ↔ NHWC).
fn to_ir(values: &[f32], onnx_shape: &[usize]) -> Vec<f32> {
    if onnx_shape.len() == 4 {
        layout::nchw_to_nhwc(values, onnx_shape)
    } else {
        values.to_vec()
    }
}

/// Runs `path` (input shape fixed by `shape`) through tract and through
/// kiln's IR on `input` (ONNX layout); returns (tract, kiln) output 0 in
/// ONNX layout.
fn float_outputs(path: &Path, shape: Option<&InputShape>, input: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let (model, ir) = kiln_converter::load_ir_shaped(path, shape).unwrap();
    let name = model.graph().output[0].name.clone();
    let expected = Reference::new(&model, &[name]).unwrap().run(input).unwrap().remove(0);
    let got = eval::run(&ir, &to_ir(input, &model.input_shape)).unwrap().remove(0);
    let out_shape = &ir.tensors[ir.outputs[0]].shape;
    let got = if out_shape.len() == 4 { layout::nhwc_to_nchw(&got, out_shape) } else { got };
    (expected, got)
}

fn assert_close(expected: &[f32], got: &[f32], what: &str) {
    assert_eq!(expected.len(), got.len(), "{what}: output sizes");
    let worst = expected.iter().zip(got).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
    assert!(worst <= 1e-5, "{what}: largest difference {worst}");
}

/// Converts `path` to int8 calibrated on `inputs` (ONNX layout, written as
/// .npy) and returns the cosine of its output 0 to tract's on each input.
fn int8_cosines(path: &Path, shape: Option<&InputShape>, inputs: &[Vec<f32>]) -> Vec<f64> {
    let model = OnnxModel::load_shaped(path, shape).unwrap();
    let calib = path.with_extension("calib");
    std::fs::create_dir_all(&calib).unwrap();
    for (i, x) in inputs.iter().enumerate() {
        std::fs::write(calib.join(format!("{i}.npy")), encode_npy(&model.input_shape, x)).unwrap();
    }
    let options = ImageOptions::default();
    let done = kiln_converter::convert_pruned(path, shape, &calib, &options, Method::MinMax, None, |_, _| {}).unwrap();
    let bytes = AlignedBytes::copy_of(&done.bytes);
    let kiln = Model::from_bytes(&bytes).unwrap();
    let mut session = Session::new(&kiln).unwrap();
    let name = model.graph().output[0].name.clone();
    let reference = Reference::new(&model, &[name]).unwrap();
    let out_dims = kiln.outputs().next().unwrap().shape.dims().to_vec();
    inputs
        .iter()
        .map(|x| {
            session.set_input_f32(0, &to_ir(x, &model.input_shape)).unwrap();
            session.run();
            let mut y = vec![0f32; out_dims.iter().product()];
            session.output_f32(0, &mut y).unwrap();
            let y = if out_dims.len() == 4 { layout::nhwc_to_nchw(&y, &out_dims) } else { y };
            cosine(&reference.run(x).unwrap()[0], &y)
        })
        .collect()
}

/// A 3x3 conv, 3 → 4 channels, padding 1, as every graph below starts.
fn conv(input: &str, output: &str) -> (NodeProto, Vec<TensorProto>) {
    let weights = floats("w", &[4, 3, 3, 3], &values(4 * 3 * 3 * 3, 7));
    let bias = floats("b", &[4], &[0.1, -0.2, 0.3, 0.0]);
    (node("Conv", "conv", &[input, "w", "b"], &[output], vec![ints("pads", &[1, 1, 1, 1])]), vec![weights, bias])
}

#[test]
fn constants_may_come_first_in_arithmetic() {
    let dir = scratch("constant_first");
    let (conv, mut init) = conv("x", "c");
    init.push(floats("scale", &[4, 1, 1], &[0.5, -1.0, 2.0, 0.25]));
    init.push(floats("one", &[], &[1.0]));
    init.push(floats("shift", &[1, 4, 1, 1], &[0.1, 0.2, -0.3, 0.4]));
    let nodes = vec![
        conv,
        node("Mul", "mul_w_x", &["scale", "c"], &["m"], vec![]),
        node("Sub", "one_minus", &["one", "m"], &["s"], vec![]),
        node("Add", "shift_plus", &["shift", "s"], &["y"], vec![]),
    ];
    let input = tensor_info("x", &[1, 3, 6, 6]);
    let path = onnx::write(&dir, "constant_first", 13, nodes, init, input, vec![tensor_info("y", &[1, 4, 6, 6])]);
    let x = values(3 * 36, 1);
    let (expected, got) = float_outputs(&path, None, &x);
    assert_close(&expected, &got, "Mul(w, x), Sub(1, x), Add(c, x)");
    let cosines = int8_cosines(&path, None, &[x, values(108, 2), values(108, 3)]);
    assert!(cosines.iter().all(|&c| c > 0.999), "int8 follows the float model: {cosines:?}");
}

#[test]
fn shape_subgraphs_fold_and_symbolic_sizes_are_fixed_by_the_user() {
    let dir = scratch("shape_subgraph");
    // y = Reshape(c, Concat(Gather(Shape(c), 0), [-1])): a flatten as
    // PyTorch exports it, on an input with symbolic height and width.
    let (conv, mut init) = conv("x", "c");
    init.push(int64s("zero", &[], &[0]));
    init.push(int64s("minus_one", &[1], &[-1]));
    let nodes = vec![
        conv,
        node("Shape", "shape", &["c"], &["s"], vec![]),
        node("Gather", "batch", &["s", "zero"], &["n"], vec![int("axis", 0)]),
        node("Unsqueeze", "batch_1d", &["n"], &["n1"], vec![ints("axes", &[0])]),
        node("Concat", "target", &["n1", "minus_one"], &["t"], vec![int("axis", 0)]),
        node("Reshape", "flatten", &["c", "t"], &["y"], vec![]),
    ];
    let input = tensor_info("x", &[-1, 3, -1, -1]);
    let path = onnx::write(&dir, "shape_subgraph", 11, nodes, init, input, vec![tensor_info("y", &[-1, -1])]);

    let err = format!("{:#}", kiln_converter::load_ir(&path).err().expect("symbolic H and W need a shape"));
    assert!(err.contains("axis 2") && err.contains("--input-shape"), "{err}");

    let shape: InputShape = "x=1,3,5,7".parse().unwrap();
    let x = values(3 * 35, 4);
    let (expected, got) = float_outputs(&path, Some(&shape), &x);
    assert_eq!(expected.len(), 4 * 35);
    assert_close(&expected, &got, "the shape subgraph");
    let (model, ir) = kiln_converter::load_ir_shaped(&path, Some(&shape)).unwrap();
    assert_eq!(model.input_shape, [1, 3, 5, 7]);
    assert!(ir.nodes.iter().all(|n| n.op.name() != "Concat"), "the shape computation runs at import, not in the model");
    let cosines = int8_cosines(&path, Some(&shape), &[x, values(105, 5)]);
    assert!(cosines.iter().all(|&c| c > 0.999), "{cosines:?}");

    let wrong: InputShape = "1,4,5,7".parse().unwrap();
    let err = format!("{:#}", kiln_converter::load_ir_shaped(&path, Some(&wrong)).err().unwrap());
    assert!(err.contains("axis 1") && err.contains("fixes it to 3"), "{err}");
    let other: InputShape = "image=1,3,5,7".parse().unwrap();
    let err = format!("{:#}", kiln_converter::load_ir_shaped(&path, Some(&other)).err().unwrap());
    assert!(err.contains("`image`") && err.contains("`x`"), "{err}");
}

#[test]
fn channels_last_graphs_with_a_softmax_on_the_last_axis() {
    // keras2onnx's form: an NHWC input transposed to NCHW for the conv,
    // transposed back, and a softmax over the channels, last.
    let dir = scratch("nhwc");
    let (conv, init) = conv("nchw", "c");
    let nodes = vec![
        node("Transpose", "to_nchw", &["x"], &["nchw"], vec![ints("perm", &[0, 3, 1, 2])]),
        conv,
        node("Transpose", "to_nhwc", &["c"], &["nhwc"], vec![ints("perm", &[0, 2, 3, 1])]),
        node("Softmax", "softmax", &["nhwc"], &["y"], vec![int("axis", -1)]),
    ];
    let input = tensor_info("x", &[1, 6, 5, 3]);
    let path = onnx::write(&dir, "nhwc", 13, nodes, init, input, vec![tensor_info("y", &[1, 6, 5, 4])]);
    let x = values(90, 6);
    let (expected, got) = float_outputs(&path, None, &x);
    assert_close(&expected, &got, "NHWC softmax");
    let cosines = int8_cosines(&path, None, &[x, values(90, 7), values(90, 8)]);
    assert!(cosines.iter().all(|&c| c > 0.999), "{cosines:?}");
}

#[test]
fn differences_of_two_activations_run_in_int8() {
    let dir = scratch("sub");
    let (conv, init) = conv("x", "c");
    let nodes = vec![
        conv,
        node("Relu", "relu", &["c"], &["r"], vec![]),
        node("Sub", "difference", &["r", "c"], &["y"], vec![]),
    ];
    let input = tensor_info("x", &[1, 3, 6, 6]);
    let path = onnx::write(&dir, "sub", 13, nodes, init, input, vec![tensor_info("y", &[1, 4, 6, 6])]);
    let x = values(108, 9);
    let (expected, got) = float_outputs(&path, None, &x);
    assert_close(&expected, &got, "Sub of activations");
    let cosines = int8_cosines(&path, None, &[x, values(108, 10), values(108, 11)]);
    assert!(cosines.iter().all(|&c| c > 0.995), "{cosines:?}");
}

/// Checks that the IR computes what tract computes on `path` (one input of
/// `n` values) and that the int8 model follows it to `min_cosine`.
fn assert_float_and_int8(path: &Path, n: usize, seed: u32, what: &str, min_cosine: f64) {
    let x = values(n, seed);
    let (expected, got) = float_outputs(path, None, &x);
    assert_close(&expected, &got, what);
    let cosines = int8_cosines(path, None, &[x, values(n, seed + 1), values(n, seed + 2)]);
    assert!(cosines.iter().all(|&c| c > min_cosine), "{what}: {cosines:?}");
}

#[test]
fn strided_slices_run_in_int8() {
    // YOLOX's Focus: the four pixel phases of a 2x2 grid side by side in
    // the channels, and one more slice walking W backwards.
    let dir = scratch("focus");
    let (conv, mut init) = conv("x", "c");
    init.push(int64s("hw", &[2], &[2, 3]));
    init.push(int64s("two", &[2], &[2, 2]));
    init.push(int64s("end", &[2], &[i64::MAX, i64::MAX]));
    for (name, start) in [("s00", [0, 0]), ("s10", [1, 0]), ("s01", [0, 1]), ("s11", [1, 1])] {
        init.push(int64s(name, &[2], &start));
    }
    init.push(int64s("back_start", &[1], &[-1]));
    init.push(int64s("back_end", &[1], &[i64::MIN]));
    init.push(int64s("back_axis", &[1], &[-1]));
    init.push(int64s("back_step", &[1], &[-2]));
    let mut nodes = vec![conv];
    for phase in ["00", "10", "01", "11"] {
        let (start, out) = (format!("s{phase}"), format!("p{phase}"));
        nodes.push(node("Slice", &out, &["c", &start, "end", "hw", "two"], &[&out], vec![]));
    }
    nodes.push(node("Slice", "back", &["c", "back_start", "back_end", "back_axis", "back_step"], &["r"], vec![]));
    nodes.push(node("MaxPool", "half", &["r"], &["h"], vec![ints("kernel_shape", &[2, 1]), ints("strides", &[2, 1])]));
    nodes.push(node("Concat", "focus", &["p00", "p10", "p01", "p11", "h"], &["y"], vec![int("axis", 1)]));
    let input = tensor_info("x", &[1, 3, 8, 8]);
    let path = onnx::write(&dir, "focus", 13, nodes, init, input, vec![tensor_info("y", &[1, 20, 4, 4])]);
    assert_float_and_int8(&path, 3 * 64, 12, "Focus slices", 0.999);
}

#[test]
fn splits_max_min_abs_and_neg_run_in_int8() {
    // YOLOv8's C2f splits a conv's channels in two; the halves meet again
    // in element-wise ops.
    let dir = scratch("split");
    let (conv, mut init) = conv("x", "c");
    init.push(int64s("halves", &[2], &[1, 3]));
    let nodes = vec![
        conv,
        node("Split", "split", &["c", "halves"], &["a", "b3"], vec![int("axis", 1)]),
        node("Split", "thirds", &["b3"], &["b0", "b1", "b2"], vec![int("axis", 1)]),
        node("Max", "max", &["a", "b0"], &["hi"], vec![]),
        node("Min", "min", &["b1", "a", "b2"], &["lo"], vec![]),
        node("Abs", "abs", &["a"], &["abs_a"], vec![]),
        node("Neg", "neg", &["b0"], &["neg_b"], vec![]),
        node("Concat", "join", &["hi", "lo", "abs_a", "neg_b"], &["y"], vec![int("axis", 1)]),
    ];
    let input = tensor_info("x", &[1, 3, 6, 6]);
    let path = onnx::write(&dir, "split", 13, nodes, init, input, vec![tensor_info("y", &[1, 4, 6, 6])]);
    assert_float_and_int8(&path, 108, 15, "Split, Max, Min, Abs, Neg", 0.995);
}

#[test]
fn depth_and_space_rearrangements_run_in_int8() {
    let dir = scratch("depth_space");
    let (conv, init) = conv("x", "c");
    let nodes = vec![
        conv,
        node("SpaceToDepth", "s2d", &["c"], &["d"], vec![int("blocksize", 2)]),
        node("DepthToSpace", "d2s", &["d"], &["y"], vec![int("blocksize", 2), string("mode", "CRD")]),
    ];
    let input = tensor_info("x", &[1, 3, 6, 8]);
    let path = onnx::write(&dir, "depth_space", 13, nodes, init, input, vec![tensor_info("y", &[1, 4, 6, 8])]);
    assert_float_and_int8(&path, 144, 18, "SpaceToDepth then DepthToSpace (CRD)", 0.999);
}

#[test]
fn reductions_squeeze_and_unsqueeze_run_in_int8() {
    // A squeeze-and-excite-like gate from the spatial maxima, then a mean
    // over the channels (an attention map).
    let dir = scratch("reduce");
    let (conv, mut init) = conv("x", "c");
    init.push(int64s("hw", &[2], &[2, 3]));
    let nodes = vec![
        conv,
        node("ReduceMax", "spatial_max", &["c"], &["m"], vec![ints("axes", &[2, 3])]),
        node("Squeeze", "squeeze", &["m", "hw"], &["s"], vec![]),
        node("Unsqueeze", "unsqueeze", &["s", "hw"], &["u"], vec![]),
        node("Mul", "gate", &["c", "u"], &["g"], vec![]),
        node("GlobalMaxPool", "global_max", &["c"], &["p"], vec![]),
        node("Add", "plus", &["g", "p"], &["t"], vec![]),
        node("ReduceMean", "channel_mean", &["t"], &["y"], vec![ints("axes", &[1]), int("keepdims", 0)]),
    ];
    let input = tensor_info("x", &[1, 3, 6, 6]);
    let path = onnx::write(&dir, "reduce", 13, nodes, init, input, vec![tensor_info("y", &[1, 6, 6])]);
    assert_float_and_int8(&path, 108, 21, "ReduceMax, Squeeze, Unsqueeze, GlobalMaxPool, ReduceMean", 0.995);
}

#[test]
fn attribute_forms_of_older_opsets_lower_too() {
    // Opset 9: Slice, Split, Squeeze and Unsqueeze take their axes, bounds
    // and sizes as attributes.
    let dir = scratch("opset9");
    let (conv, init) = conv("x", "c");
    let slice = vec![ints("starts", &[1, 0]), ints("ends", &[6, -1]), ints("axes", &[2, 3])];
    let nodes = vec![
        conv,
        node("Slice", "crop", &["c"], &["s"], slice),
        node("Split", "split", &["s"], &["lo", "hi"], vec![int("axis", 1), ints("split", &[1, 3])]),
        node("ReduceMean", "mean", &["hi"], &["m"], vec![ints("axes", &[1])]),
        node("Squeeze", "squeeze", &["m"], &["q"], vec![ints("axes", &[1])]),
        node("Unsqueeze", "unsqueeze", &["q"], &["u"], vec![ints("axes", &[1])]),
        node("Add", "sum", &["lo", "u"], &["y"], vec![]),
    ];
    let input = tensor_info("x", &[1, 3, 7, 7]);
    let path = onnx::write(&dir, "opset9", 9, nodes, init, input, vec![tensor_info("y", &[1, 1, 5, 6])]);
    assert_float_and_int8(&path, 147, 24, "opset 9 Slice, Split, Squeeze, Unsqueeze", 0.995);
}

#[test]
fn every_unsupported_node_is_named_before_calibration() {
    let dir = scratch("unsupported");
    let (conv, init) = conv("x", "c");
    let nodes = vec![
        conv,
        node("LRN", "norm", &["c"], &["n"], vec![int("size", 3)]),
        node("Relu", "relu", &["n"], &["r"], vec![]),
        node("Erf", "pick", &["r"], &["y"], vec![]),
    ];
    let input = tensor_info("x", &[1, 3, 6, 6]);
    let path = onnx::write(&dir, "unsupported", 13, nodes, init, input, vec![tensor_info("y", &[1, 4, 6, 6])]);
    let model = OnnxModel::load(&path).unwrap();
    let report = kiln_converter::check::check(&model).unwrap();
    assert!(!report.converts());
    let names = |nodes: &[kiln_converter::lower::NodeReport]| nodes.iter().map(|n| n.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(&report.unsupported), ["norm"]);
    assert_eq!(report.ops["Erf"].float, 1, "Erf has no int8 form: it runs in float");
    assert_eq!(report.ops["Relu"].int8, 1, "the Relu after the unsupported node is looked at too");
    assert_eq!(report.ops["Conv"].int8, 1);
    let err = format!("{:#}", kiln_converter::load_ir(&path).err().unwrap());
    assert!(err.contains("`norm` (LRN)") && !err.contains("`pick`") && err.contains("1 of its 4"), "{err}");
}

#[test]
fn transposed_convolutions_upsample_in_int8() {
    // PP-OCRv4's DBNet head: ConvTranspose 2x2 stride 2, BatchNorm, Relu;
    // then a 3x3 stride-2 one with padding, output_padding and 2 groups.
    let dir = scratch("convtranspose");
    let (conv, mut init) = conv("x", "c");
    init.push(floats("up_w", &[4, 6, 2, 2], &values(4 * 6 * 4, 12)));
    init.push(floats("up_b", &[6], &[0.1, -0.1, 0.2, 0.0, -0.3, 0.05]));
    init.push(floats("gamma", &[6], &[1.0, 0.5, 2.0, 1.5, 0.8, 1.2]));
    init.push(floats("beta", &[6], &[0.1, 0.2, -0.1, 0.0, 0.3, -0.2]));
    init.push(floats("mean", &[6], &[0.05, -0.1, 0.0, 0.2, 0.1, -0.05]));
    init.push(floats("var", &[6], &[0.5, 1.0, 2.0, 0.8, 1.5, 0.9]));
    init.push(floats("up2_w", &[6, 2, 3, 3], &values(6 * 2 * 9, 13)));
    let two_by_two = vec![ints("kernel_shape", &[2, 2]), ints("strides", &[2, 2])];
    let three_by_three =
        vec![ints("strides", &[2, 2]), ints("pads", &[1, 1, 1, 1]), ints("output_padding", &[1, 1]), int("group", 2)];
    let nodes = vec![
        conv,
        node("ConvTranspose", "up", &["c", "up_w", "up_b"], &["u"], two_by_two),
        node("BatchNormalization", "bn", &["u", "gamma", "beta", "mean", "var"], &["n"], vec![]),
        node("Relu", "relu", &["n"], &["r"], vec![]),
        node("ConvTranspose", "up2", &["r", "up2_w"], &["y"], three_by_three),
    ];
    let input = tensor_info("x", &[1, 3, 6, 6]);
    let path = onnx::write(&dir, "convtranspose", 13, nodes, init, input, vec![tensor_info("y", &[1, 4, 24, 24])]);
    let x = values(108, 14);
    let (expected, got) = float_outputs(&path, None, &x);
    assert_eq!(expected.len(), 4 * 24 * 24);
    assert_close(&expected, &got, "ConvTranspose, BatchNorm, Relu, ConvTranspose");
    let (_, ir) = kiln_converter::load_ir(&path).unwrap();
    let ops: Vec<&str> = ir.nodes.iter().map(|n| n.op.name()).collect();
    assert_eq!(ops, ["Conv2d", "ZeroInsert", "Conv2d", "ZeroInsert", "Conv2d"], "BatchNorm and Relu fold");
    let cosines = int8_cosines(&path, None, &[x, values(108, 15), values(108, 16)]);
    assert!(cosines.iter().all(|&c| c > 0.999), "int8 follows the float model: {cosines:?}");
}

#[test]
fn a_transposed_convolution_that_crops_is_refused_by_name() {
    let dir = scratch("convtranspose_crop");
    let (conv, mut init) = conv("x", "c");
    init.push(floats("up_w", &[4, 2, 2, 2], &values(32, 17)));
    let pads = vec![ints("strides", &[2, 2]), ints("pads", &[2, 0, 0, 0])];
    let nodes = vec![conv, node("ConvTranspose", "up", &["c", "up_w"], &["y"], pads)];
    let input = tensor_info("x", &[1, 3, 6, 6]);
    let path = onnx::write(&dir, "crop", 13, nodes, init, input, vec![tensor_info("y", &[1, 2, 10, 12])]);
    let err = format!("{:#}", kiln_converter::load_ir(&path).err().unwrap());
    assert!(err.contains("`up` (ConvTranspose)") && err.contains("does not crop"), "{err}");
}
