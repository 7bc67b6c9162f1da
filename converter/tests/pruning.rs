//! Structured channel pruning: the channel analysis on a graph with every
//! coupling pattern, exactness (pruning nothing, pruning channels that are
//! all zeros), the MAC budget's allocation, and SFace pruned to 80% and 75%
//! of its multiply-accumulates, int8, against the unpruned float model run
//! by tract, with and without the least-squares recovery.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use kiln_converter::calibrate::{calibrate_ir, Method};
use kiln_converter::input::{self, ImageOptions};
use kiln_converter::ir::{eval, layout, FusedActivation, Graph, Node, Op, Window};
use kiln_converter::prune::{self, channels, select, Amount, Criterion, Limits};
use kiln_converter::quantize::quantize;
use kiln_converter::reference::Reference;
use kiln_runtime::format::AlignedBytes;
use kiln_runtime::{Model, Session};

/// Deterministic pseudo-random weights in [-1, 1).
fn weights(n: usize, seed: u64) -> Vec<f32> {
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

fn conv(shape: [usize; 4], groups: usize, pad: usize, seed: u64, activation: FusedActivation) -> Op {
    Op::Conv2d {
        weights: weights(shape.iter().product(), seed),
        weight_shape: shape,
        bias: weights(shape[0], seed + 100),
        stride: [1, 1],
        dilation: [1, 1],
        pads: [pad; 4],
        groups,
        pad_value: 0.0,
        activation,
    }
}

/// A graph with every coupling the analysis knows: a residual Add of two
/// convolutions, a depthwise convolution, a channel Concat, a fused PRelu
/// and Relu, max pooling and Flatten → fully connected.
fn coupled_graph() -> Graph {
    let mut g = Graph::default();
    let shapes: [&[usize]; 11] = [
        &[1, 6, 6, 3],
        &[1, 6, 6, 8],
        &[1, 6, 6, 8],
        &[1, 6, 6, 8],
        &[1, 6, 6, 8],
        &[1, 6, 6, 4],
        &[1, 6, 6, 12],
        &[1, 6, 6, 6],
        &[1, 3, 3, 6],
        &[1, 54],
        &[1, 5],
    ];
    for (i, s) in shapes.iter().enumerate() {
        g.add_tensor(s.to_vec(), Some(format!("t{i}")));
    }
    let prelu = FusedActivation { alpha: Some(weights(8, 7)), clamp: None };
    let relu = FusedActivation { alpha: None, clamp: Some((0.0, f32::INFINITY)) };
    let fc = Op::FullyConnected {
        weights: weights(54 * 5, 9),
        out_features: 5,
        bias: weights(5, 10),
        activation: FusedActivation::default(),
    };
    let window = Window { kernel: [2, 2], stride: [2, 2], pads: [0; 4] };
    let nodes = [
        ("a", conv([8, 3, 3, 3], 1, 1, 1, prelu), vec![0], 1),
        ("b", conv([8, 1, 1, 8], 1, 0, 2, FusedActivation::default()), vec![1], 2),
        ("add", Op::Add, vec![1, 2], 3),
        ("dw", conv([8, 3, 3, 1], 8, 1, 3, FusedActivation::default()), vec![3], 4),
        ("c", conv([4, 1, 1, 3], 1, 0, 4, FusedActivation::default()), vec![0], 5),
        ("concat", Op::Concat { axis: 3 }, vec![4, 5], 6),
        ("d", conv([6, 1, 1, 12], 1, 0, 5, relu), vec![6], 7),
        ("pool", Op::MaxPool(window), vec![7], 8),
        ("flatten", Op::Reshape { shape: vec![1, 54] }, vec![8], 9),
        ("fc", fc, vec![9], 10),
    ];
    for (name, op, inputs, output) in nodes {
        g.nodes.push(Node { name: name.into(), op, inputs, output });
    }
    g.input = 0;
    g.outputs = vec![10];
    kiln_converter::ir::infer_shapes(&g).unwrap();
    g
}

#[test]
fn channel_groups_follow_every_coupling() {
    let g = coupled_graph();
    let groups = channels::groups(&g);
    let summary: Vec<(&str, usize, Vec<usize>)> =
        groups.iter().map(|gr| (gr.name.as_str(), gr.width(), gr.sources.clone())).collect();
    // a and b are one group through the residual Add (with the depthwise
    // conv and the first 8 channels of the Concat); c owns the last 4 of
    // the Concat; d's channels reach the FC as blocks of 3×3 features; the
    // FC's output is the graph output and stays.
    assert_eq!(summary, vec![("t1", 8, vec![0, 1]), ("t5", 4, vec![4]), ("t7", 6, vec![6])]);
    let unit = &groups[0].units[2];
    let tensors: Vec<(usize, usize)> = unit.iter().map(|c| (c.tensor, c.index)).collect();
    assert_eq!(tensors, vec![(1, 2), (2, 2), (3, 2), (4, 2), (6, 2)]);
    assert_eq!(groups[1].units[1].iter().map(|c| (c.tensor, c.index)).collect::<Vec<_>>(), vec![(5, 1), (6, 9)]);
    let flat: Vec<usize> = groups[2].units[3].iter().filter(|c| c.tensor == 9).map(|c| c.index).collect();
    assert_eq!(flat, (0..9).map(|p| p * 6 + 3).collect::<Vec<_>>());
}

#[test]
fn a_mac_budget_is_spent_where_the_loss_per_mac_is_least() {
    let g = coupled_graph();
    let groups = channels::groups(&g);
    let scores: Vec<Vec<f64>> = groups.iter().map(|gr| (0..gr.width()).map(|u| u as f64).collect()).collect();
    let limits = Limits { min_width: 1, multiple: 1 };
    let linear = |width: usize, per_unit: f64| Some((0..=width).map(|k| k as f64 * per_unit).collect::<Vec<_>>());
    // Either of the first two groups alone can save 5% of the MACs; the
    // third has no measured loss and keeps its width.
    for (cheap, dear) in [(0, 1), (1, 0)] {
        let mut losses = vec![None; groups.len()];
        losses[cheap] = linear(groups[cheap].width(), 1e-3);
        losses[dear] = linear(groups[dear].width(), 1.0);
        let removed = select::select(&g, &groups, &scores, &losses, &Amount::Macs(0.95), limits).unwrap();
        assert!(!removed[cheap].is_empty(), "{removed:?}");
        assert!(removed[dear].is_empty() && removed[2].is_empty(), "{removed:?}");
        // The lowest-scored units, and no more than the budget needs.
        let n = removed[cheap].len();
        assert_eq!(removed[cheap], (0..n).collect::<Vec<_>>());
        let fewer = BTreeMap::from([(groups[cheap].name.clone(), (n - 1) as f64 / groups[cheap].width() as f64)]);
        let mut narrower = g.clone();
        let exact = prune::Options {
            amount: Amount::PerGroup(fewer),
            criterion: Criterion::L1,
            limits,
            recover: false,
            bias_correction: false,
        };
        let report = prune::prune(&mut narrower, &[], &exact).unwrap();
        assert!(report.after.macs as f64 > 0.95 * report.before.macs as f64, "one unit fewer would do");
    }
}

/// Zeroes every weight and bias that makes channel `index` of `op`'s output.
fn zero_output_channel(op: &mut Op, index: usize) {
    let (Op::Conv2d { weights, bias, .. } | Op::FullyConnected { weights, bias, .. }) = op else { unreachable!() };
    let per = weights.len() / bias.len();
    weights[index * per..][..per].iter_mut().for_each(|w| *w = 0.0);
    bias[index] = 0.0;
}

#[test]
fn removing_channels_that_are_all_zero_changes_no_output() {
    let mut g = coupled_graph();
    // Channels 2 and 5 of the a+b group (through a, b and the depthwise
    // conv), channel 1 of c and channel 3 of d compute exact zeros.
    for (node, channel) in [(0, 2), (1, 2), (3, 2), (0, 5), (1, 5), (3, 5), (4, 1), (6, 3)] {
        zero_output_channel(&mut g.nodes[node].op, channel);
    }
    let input = weights(6 * 6 * 3, 42);
    let expected = eval::run(&g, &input).unwrap();

    let mut pruned = g.clone();
    let ratios = BTreeMap::from([("t1".to_owned(), 0.25), ("t5".to_owned(), 0.25), ("t7".to_owned(), 1.0 / 6.0)]);
    let options = prune::Options {
        amount: Amount::PerGroup(ratios),
        criterion: Criterion::L1,
        limits: Limits { min_width: 1, multiple: 1 },
        recover: false,
        bias_correction: false,
    };
    let report = prune::prune(&mut pruned, core::slice::from_ref(&input), &options).unwrap();
    let widths: Vec<(usize, usize)> = report.widths.iter().map(|(_, b, a)| (*b, *a)).collect();
    assert_eq!(widths, vec![(8, 6), (4, 3), (6, 5)]);
    let shapes: Vec<usize> = pruned.tensors.iter().map(|t| *t.shape.last().unwrap()).collect();
    assert_eq!(shapes, vec![3, 6, 6, 6, 6, 3, 9, 5, 5, 45, 5]);
    assert!(report.after.macs < report.before.macs && report.after.parameters < report.before.parameters);
    // Bit for bit: a zero term changes no float sum.
    assert_eq!(eval::run(&pruned, &input).unwrap(), expected);
}

#[test]
fn pruning_nothing_is_the_identity() {
    let onnx = common::sface();
    let (model, graph) = kiln_converter::load_ir(&onnx).unwrap();
    let mut pruned = graph.clone();
    let report = prune::prune(&mut pruned, &[], &prune::Options::default()).unwrap();
    assert!(!report.pruned_any() && report.refits.is_empty());
    assert_eq!(report.before, report.after);
    let ops = |g: &Graph| g.nodes.iter().map(|n| n.op.clone()).collect::<Vec<_>>();
    assert!(ops(&pruned) == ops(&graph), "pruning zero channels changed a weight");

    // And the file: the same ranges quantize both to the same bytes.
    let faces = input::load_dir(&common::calibration_faces(), &model.input_shape, &ImageOptions::default()).unwrap();
    let ranges = calibrate_ir(&graph, &faces[..1], &model.input_shape, Method::MinMax, |_, _| {}).unwrap();
    let file = |g: &Graph| quantize(g, &ranges, Some(ImageOptions::default().value_range())).unwrap();
    assert!(file(&pruned) == file(&graph), "--prune 0 changed the .kiln file");
}

/// SFace's int8 embeddings of `faces` from the converted `bytes`.
fn embeddings(bytes: &[u8], faces: &[input::Sample], shape: &[usize]) -> Vec<Vec<f32>> {
    let file = AlignedBytes::copy_of(bytes);
    let model = Model::from_bytes(&file).unwrap();
    let mut session = Session::new(&model).unwrap();
    faces
        .iter()
        .map(|face| {
            let mut out = vec![0f32; 128];
            session.run_f32(&[&layout::nchw_to_nhwc(&face.values, shape)], &mut [&mut out]).unwrap();
            out
        })
        .collect()
}

/// Issue 5's acceptance, on the pruning calibration set (the 8 bundled
/// crops, the 114 faces in `models/cache/calibration-photos` and the 14
/// other people of the Solvay photo): at 74.8% of the MACs the held-out
/// cosine is 0.95464 (0.13769 without recovery) and the decisions agree
/// on 272 of 276 pairs. About 6 minutes, most of it pruning's scoring and
/// refit on the 136 faces and their mirror images.
#[test]
fn sface_pruned_to_three_quarters_of_its_macs_keeps_its_decisions() {
    keeps_its_decisions(0.75, &common::face::pruning_calibration());
}

/// The same bar at 80% of the MACs, calibrated on the 8 bundled crops
/// alone: held-out cosine 0.95039 at 79.6%
/// (0.39445 without recovery), decisions agree on 275 of 276 pairs.
#[test]
fn sface_pruned_to_four_fifths_of_its_macs_keeps_its_decisions() {
    keeps_its_decisions(0.80, &common::calibration_faces());
}

/// SFace pruned to `budget` of its MACs, int8, calibrated and refit on the
/// faces in `calib`: held-out mean cosine to the unpruned fp32 model ≥
/// 0.95, ≥ 98% of the 276 same/different decisions at 0.363 agree, and the
/// same channels removed without the least-squares recovery score
/// measurably worse.
fn keeps_its_decisions(budget: f64, calib: &Path) {
    let onnx = common::sface();
    let (model, _) = kiln_converter::load_ir(&onnx).unwrap();
    let options = ImageOptions::default();
    let calibration = input::load_dir(&common::calibration_faces(), &model.input_shape, &options).unwrap();
    let held_out = input::load_dir(&common::faces(), &model.input_shape, &options).unwrap();
    let faces: Vec<input::Sample> = held_out.into_iter().chain(calibration).collect();
    let paths: Vec<&Path> = faces.iter().map(|f| f.path.as_path()).collect();
    let reference = Reference::new(&model, &[model.graph().output[0].name.clone()]).unwrap();
    let float: Vec<Vec<f32>> = faces.iter().map(|f| reference.run(&f.values).unwrap().remove(0)).collect();

    let run = |prune: &prune::Options| -> (prune::Report, f64, usize) {
        let done =
            kiln_converter::convert_pruned(&onnx, None, calib, &options, Method::Mse, Some(prune), |_, _| {}).unwrap();
        let report = done.pruning.unwrap();
        let kept = report.after.macs as f64 / report.before.macs as f64;
        assert!(kept <= budget, "MACs kept: {kept}");
        let int8 = embeddings(&done.bytes, &faces, &model.input_shape);
        let cosines: Vec<f64> = (0..16).map(|i| common::cosine(&int8[i], &float[i])).collect();
        let mean = cosines.iter().sum::<f64>() / 16.0;
        let min = cosines.iter().copied().fold(1.0, f64::min);
        let (pairs, agree, same) = common::pair_agreement(&paths, &float, &int8);
        assert_eq!((pairs, same), (276, 10));
        eprintln!(
            "recovery {}: {} calibration faces, MACs {:.1}%, file {} B of {} B, held-out cosine to fp32 mean \
             {mean:.5} min {min:.5}, decisions agree on {agree}/{pairs}",
            prune.recover,
            done.samples,
            100.0 * kept,
            done.bytes.len(),
            done.unpruned_bytes
        );
        (report, mean, agree)
    };
    let (report, mean, agree) = run(&prune::Options { amount: Amount::Macs(budget), ..prune::Options::default() });
    // The same widths without recovery: the criterion being the same, the
    // same channels go.
    let ratios = report.widths.iter().map(|(name, before, after)| (name.clone(), 1.0 - *after as f64 / *before as f64));
    let plain =
        prune::Options { amount: Amount::PerGroup(ratios.collect()), recover: false, ..prune::Options::default() };
    let (plain_report, plain_mean, _) = run(&plain);
    assert_eq!(plain_report.widths, report.widths);
    assert!(mean >= 0.95, "pruned int8 SFace: mean cosine {mean:.5} to fp32");
    assert!(agree * 100 >= 98 * 276, "decisions agree on {agree} of 276 pairs");
    assert!(mean - plain_mean >= 0.01, "recovery gains too little: {mean:.5} with it, {plain_mean:.5} without");
}
