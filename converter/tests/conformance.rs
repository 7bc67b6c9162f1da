//! The ONNX spec's own single-operator test cases (from the onnx==1.22.0
//! wheel, extracted by `models/fetch`), run through import, lowering, the
//! passes and the f32 interpreter: they prove kiln's reading of each op's
//! attributes and of NCHW semantics on NHWC data. Every graph input but the
//! first becomes a constant (weights, shapes, scales), as in a real model.

mod common;

use std::path::Path;

use kiln_converter::ir::{eval, layout};
use prost::Message;
use tract_onnx::data_resolver::MmapDataResolver;
use tract_onnx::pb;

/// The cases kiln must pass: every case of each supported op, less those
/// outside kiln's scope: 1-D/3-D and dilated pooling, integer types,
/// training mode, a constant operand that is not per channel (Add/Concat of
/// a full tensor, a Gemm bias matrix), ceil_mode with count_include_pad,
/// cubic, antialiased and cropping Resize, non-constant Pad modes, empty
/// slices and splits (kiln has no empty tensors), Max/Min of more than one
/// input (the harness makes every input but the first a constant, and a
/// non-scalar constant has no int8 form there), reductions of bools or of
/// an empty axis, SplitToSequence, ConvTranspose in 1-D
/// (`test_convtranspose_1d`) and 3-D (`test_convtranspose_3d`): IR
/// activations are NHWC images.
const CASES: &[&str] = &[
    "test_basic_conv_with_padding",
    "test_basic_conv_without_padding",
    "test_conv_with_autopad_same",
    "test_conv_with_strides_and_asymmetric_padding",
    "test_conv_with_strides_no_padding",
    "test_conv_with_strides_padding",
    "test_convtranspose",
    "test_convtranspose_autopad_same",
    "test_convtranspose_dilations",
    "test_convtranspose_group_2",
    "test_convtranspose_group_2_image_3",
    "test_convtranspose_kernel_shape",
    "test_convtranspose_output_shape",
    "test_convtranspose_pad",
    "test_convtranspose_pads",
    "test_gemm_all_attributes",
    "test_gemm_alpha",
    "test_gemm_beta",
    "test_gemm_default_no_bias",
    "test_gemm_default_scalar_bias",
    "test_gemm_default_single_elem_vector_bias",
    "test_gemm_default_vector_bias",
    "test_gemm_default_zero_bias",
    "test_gemm_transposeB",
    "test_matmul_2d",
    "test_averagepool_2d_ceil",
    "test_averagepool_2d_default",
    "test_averagepool_2d_pads",
    "test_averagepool_2d_pads_count_include_pad",
    "test_averagepool_2d_precomputed_pads",
    "test_averagepool_2d_precomputed_pads_count_include_pad",
    "test_averagepool_2d_precomputed_same_upper",
    "test_averagepool_2d_precomputed_strides",
    "test_averagepool_2d_same_lower",
    "test_averagepool_2d_same_upper",
    "test_averagepool_2d_strides",
    "test_maxpool_2d_ceil",
    "test_maxpool_2d_default",
    "test_maxpool_2d_pads",
    "test_maxpool_2d_precomputed_pads",
    "test_maxpool_2d_precomputed_same_upper",
    "test_maxpool_2d_precomputed_strides",
    "test_maxpool_2d_same_lower",
    "test_maxpool_2d_same_upper",
    "test_maxpool_2d_strides",
    "test_globalaveragepool",
    "test_globalaveragepool_precomputed",
    "test_batchnorm_epsilon",
    "test_batchnorm_example",
    "test_clip",
    "test_clip_default_inbounds",
    "test_clip_default_max",
    "test_clip_default_min",
    "test_clip_example",
    "test_clip_inbounds",
    "test_clip_min_greater_than_max",
    "test_clip_outbounds",
    "test_clip_splitbounds",
    "test_relu",
    "test_leakyrelu",
    "test_leakyrelu_default",
    "test_leakyrelu_example",
    "test_prelu_broadcast",
    "test_sigmoid",
    "test_sigmoid_example",
    "test_tanh",
    "test_tanh_example",
    "test_hardswish",
    "test_hardsigmoid",
    "test_hardsigmoid_default",
    "test_hardsigmoid_example",
    "test_add_bcast",
    "test_sub_bcast",
    "test_mul_bcast",
    "test_div_bcast",
    "test_flatten_axis0",
    "test_flatten_axis1",
    "test_flatten_axis2",
    "test_flatten_axis3",
    "test_flatten_default_axis",
    "test_flatten_negative_axis1",
    "test_flatten_negative_axis2",
    "test_flatten_negative_axis3",
    "test_flatten_negative_axis4",
    "test_reshape_extended_dims",
    "test_reshape_negative_dim",
    "test_reshape_negative_extended_dims",
    "test_reshape_one_dim",
    "test_reshape_reduced_dims",
    "test_reshape_reordered_all_dims",
    "test_reshape_reordered_last_dims",
    "test_reshape_zero_and_negative_dim",
    "test_reshape_zero_dim",
    "test_transpose_all_permutations_0",
    "test_transpose_all_permutations_1",
    "test_transpose_all_permutations_2",
    "test_transpose_all_permutations_3",
    "test_transpose_all_permutations_4",
    "test_transpose_all_permutations_5",
    "test_transpose_default",
    "test_softmax_axis_0",
    "test_softmax_axis_1",
    "test_softmax_axis_2",
    "test_softmax_default_axis",
    "test_softmax_example",
    "test_softmax_large_number",
    "test_softmax_negative_axis",
    "test_constant_pad",
    "test_resize_downsample_scales_linear",
    "test_resize_downsample_scales_linear_align_corners",
    "test_resize_downsample_scales_nearest",
    "test_resize_downsample_sizes_linear_pytorch_half_pixel",
    "test_resize_downsample_sizes_nearest",
    "test_resize_upsample_scales_linear",
    "test_resize_upsample_scales_linear_align_corners",
    "test_resize_upsample_scales_nearest",
    "test_resize_upsample_sizes_nearest",
    "test_resize_upsample_sizes_nearest_ceil_half_pixel",
    "test_resize_upsample_sizes_nearest_floor_align_corners",
    "test_resize_upsample_sizes_nearest_round_prefer_ceil_asymmetric",
    "test_upsample_nearest",
    "test_maxpool_2d_ceil_output_size_reduce_by_one",
    "test_slice",
    "test_slice_default_axes",
    "test_slice_default_steps",
    "test_slice_end_out_of_bounds",
    "test_slice_neg",
    "test_slice_neg_steps",
    "test_slice_negative_axes",
    "test_split_1d_uneven_split_opset18",
    "test_split_2d_uneven_split_opset18",
    "test_split_equal_parts_1d_opset13",
    "test_split_equal_parts_1d_opset18",
    "test_split_equal_parts_2d",
    "test_split_equal_parts_2d_opset13",
    "test_split_equal_parts_default_axis_opset13",
    "test_split_equal_parts_default_axis_opset18",
    "test_split_variable_parts_1d_opset13",
    "test_split_variable_parts_1d_opset18",
    "test_split_variable_parts_2d_opset13",
    "test_split_variable_parts_2d_opset18",
    "test_split_variable_parts_default_axis_opset13",
    "test_split_variable_parts_default_axis_opset18",
    "test_squeeze",
    "test_squeeze_negative_axes",
    "test_unsqueeze_axis_0",
    "test_unsqueeze_axis_1",
    "test_unsqueeze_axis_2",
    "test_unsqueeze_negative_axes",
    "test_unsqueeze_three_axes",
    "test_unsqueeze_two_axes",
    "test_unsqueeze_unsorted_axes",
    "test_abs",
    "test_neg",
    "test_neg_example",
    "test_max_one_input",
    "test_min_one_input",
    "test_globalmaxpool",
    "test_globalmaxpool_precomputed",
    "test_reduce_max_default_axes_keepdim_example",
    "test_reduce_max_default_axes_keepdims_random",
    "test_reduce_max_do_not_keepdims_example",
    "test_reduce_max_do_not_keepdims_random",
    "test_reduce_max_keepdims_example",
    "test_reduce_max_keepdims_random",
    "test_reduce_max_negative_axes_keepdims_example",
    "test_reduce_max_negative_axes_keepdims_random",
    "test_reduce_mean_default_axes_keepdims_example",
    "test_reduce_mean_default_axes_keepdims_random",
    "test_reduce_mean_do_not_keepdims_example",
    "test_reduce_mean_do_not_keepdims_random",
    "test_reduce_mean_keepdims_example",
    "test_reduce_mean_keepdims_random",
    "test_reduce_mean_negative_axes_keepdims_example",
    "test_reduce_mean_negative_axes_keepdims_random",
    "test_depthtospace_crd_mode_example",
    "test_depthtospace_example",
    "test_spacetodepth",
    "test_spacetodepth_example",
];

fn read_tensor(path: &Path) -> pb::TensorProto {
    pb::TensorProto::decode(&*std::fs::read(path).unwrap()).unwrap()
}

fn values(t: &pb::TensorProto) -> (Vec<usize>, Vec<f32>) {
    let t = tract_onnx::tensor::load_tensor(&MmapDataResolver, t, None).unwrap();
    let t = t.cast_to::<f32>().unwrap();
    let view = t.to_plain_array_view::<f32>().unwrap();
    (view.shape().to_vec(), view.iter().copied().collect())
}

/// Runs one case; returns the largest relative error against the expected
/// outputs (every one: a Split has several).
fn run_case(dir: &Path, scratch: &Path) -> anyhow::Result<f32> {
    let mut model = pb::ModelProto::decode(&*std::fs::read(dir.join("model.onnx"))?)?;
    let data = dir.join("test_data_set_0");
    let graph = model.graph.as_mut().unwrap();
    for (i, input) in graph.input.iter().enumerate().skip(1) {
        let mut t = read_tensor(&data.join(format!("input_{i}.pb")));
        t.name = input.name.clone();
        graph.initializer.push(t);
    }
    let name = dir.file_name().unwrap().to_string_lossy();
    let path = scratch.join(format!("{name}.onnx"));
    std::fs::write(&path, model.encode_to_vec())?;
    let (_, ir) = kiln_converter::load_ir(&path)?;

    let (in_shape, input) = values(&read_tensor(&data.join("input_0.pb")));
    let input = if in_shape.len() == 4 { layout::nchw_to_nhwc(&input, &in_shape) } else { input };
    let mut worst = 0f32;
    for (i, got) in eval::run(&ir, &input)?.into_iter().enumerate() {
        let out_shape = &ir.tensors[ir.outputs[i]].shape;
        let got = if out_shape.len() == 4 { layout::nhwc_to_nchw(&got, out_shape) } else { got };
        let (expected_shape, expected) = values(&read_tensor(&data.join(format!("output_{i}.pb"))));
        anyhow::ensure!(got.len() == expected.len(), "output {i}: {} values, expected {expected_shape:?}", got.len());
        let err = got.iter().zip(&expected).map(|(a, b)| (a - b).abs() / b.abs().max(1.0)).fold(0.0, f32::max);
        worst = worst.max(err);
    }
    Ok(worst)
}

#[test]
fn onnx_node_cases() {
    let root = common::model("onnx-node");
    let scratch = Path::new(env!("CARGO_TARGET_TMPDIR")).join("conformance");
    std::fs::create_dir_all(&scratch).unwrap();
    let mut failures = vec![];
    for case in CASES {
        match run_case(&root.join(case), &scratch) {
            Ok(err) if err <= 1e-5 => {}
            Ok(err) => failures.push(format!("{case}: relative error {err:e}")),
            Err(e) => failures.push(format!("{case}: {e:#}")),
        }
    }
    eprintln!("{} of {} ONNX node cases pass", CASES.len() - failures.len(), CASES.len());
    assert!(failures.is_empty(), "failing cases:\n{}", failures.join("\n"));
}
