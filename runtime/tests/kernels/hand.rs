//! Small cases whose int8 outputs are worked out by hand, exactly. Unlike
//! the 1-LSB properties, they pin the rounding (half to even) and the
//! border conventions.

use kiln_runtime::kernels::{scalar, QIn, QOut, Requant};
use kiln_runtime::ops::{Act, Conv2d, CoordTransform, NearestMode, Pool, Resize, ResizeMode};
use kiln_runtime::quant::softmax_table;
use kiln_runtime::Quant;

use crate::reference::shape;

fn q(scale: f32, zero_point: i32) -> Quant {
    Quant { scale, zero_point }
}

#[test]
fn conv2d_3x3_with_padding() {
    // x: 1x3x3x1, scale 0.5, zero point 1; x - zx is
    //   0 1 2
    //   3 4 5
    //   6 7 8
    // Weights: one 3x3 filter of ones, scale 0.5; bias 2; padding 1 on every
    // side, stride 1, so the output is 3x3 and each output sums the 3x3
    // neighbourhood inside the image:
    //   acc = 2 + [ 8 15 12 ]   = [ 10 17 14 ]
    //             [21 36 27 ]     [ 23 38 29 ]
    //             [20 33 24 ]     [ 22 35 26 ]
    // y scale 1, zero point -3: multiplier 0.5 * 0.5 / 1 = 0.25, so
    //   acc * 0.25 = [2.5 4.25 3.5 / 5.75 9.5 7.25 / 5.5 8.75 6.5]
    //   rounded half to even = [2 4 4 / 6 10 7 / 6 9 6]
    //   plus -3 = [-1 1 1 / 3 7 4 / 3 6 3].
    let x: Vec<i8> = (1..=9).collect();
    let w = [1i8; 9];
    let p = Conv2d { stride: [1, 1], dilation: [1, 1], pad: [1, 1, 1, 1], groups: 1, act: Act::NONE };
    let requant = Requant { multiplier: &[0.25], negative: &[0.25], zero_point: -3, act: Act::NONE };
    let mut y = [0i8; 9];
    scalar::conv2d(
        &p,
        QIn { data: &x, shape: shape(&[1, 3, 3, 1]), quant: q(0.5, 1) },
        QIn { data: &w, shape: shape(&[1, 3, 3, 1]), quant: q(0.5, 0) },
        &[2],
        &requant,
        QOut { data: &mut y, shape: shape(&[1, 3, 3, 1]), quant: q(1.0, -3) },
    );
    assert_eq!(y, [-1, 1, 1, 3, 7, 4, 3, 6, 3]);
}

#[test]
fn avg_pool_at_the_border() {
    // x: 1x2x2x1, zero point 5: x - zx = [10 20 / 30 41]. A 2x2 window,
    // stride 1, padding 1 at the top and left only, so the output is 2x2 and
    // the windows hold (valid part):
    //   (0,0): 10            (0,1): 10 20
    //   (1,0): 10 30         (1,1): 10 20 30 41 = 101
    // Same scale in and out; y zero point -10.
    // Valid count:    10/1 = 10, 30/2 = 15, 40/2 = 20, 101/4 = 25.25
    //   -> [10 15 20 25] - 10 = [0 5 10 15].
    // Whole window:   10/4 = 2.5 -> 2, 30/4 = 7.5 -> 8, 40/4 = 10, 25.25 -> 25
    //   -> [2 8 10 25] - 10 = [-8 -2 0 15].
    let x = [15i8, 25, 35, 46];
    for (count_include_pad, want) in [(false, [0i8, 5, 10, 15]), (true, [-8, -2, 0, 15])] {
        let p = Pool { kernel: [2, 2], stride: [1, 1], pad: [1, 1, 0, 0], count_include_pad };
        let mut y = [0i8; 4];
        scalar::avg_pool(
            &p,
            QIn { data: &x, shape: shape(&[1, 2, 2, 1]), quant: q(0.1, 5) },
            QOut { data: &mut y, shape: shape(&[1, 2, 2, 1]), quant: q(0.1, -10) },
        );
        assert_eq!(y, want, "count_include_pad {count_include_pad}");
    }
}

#[test]
fn add_with_broadcasting() {
    // a: [2, 3], scale 0.5, zero point 0: real [1 2 3 / -1 -2 -3].
    // b: [3], scale 0.25, zero point 4: q [6 8 2] is real [0.5 1 -0.5].
    // a + b = [1.5 3 2.5 / -0.5 -1 -3.5]; y scale 1, zero point -1:
    //   rounded half to even [2 3 2 / 0 -1 -4], plus -1 = [1 2 1 / -1 -2 -5].
    // The same with the operands swapped (b broadcast on the left).
    let a = [2i8, 4, 6, -2, -4, -6];
    let b = [6i8, 8, 2];
    let (aq, bq, yq) = (q(0.5, 0), q(0.25, 4), q(1.0, -1));
    let want = [1i8, 2, 1, -1, -2, -5];
    let mut y = [0i8; 6];
    let (a_in, b_in) =
        (QIn { data: &a, shape: shape(&[2, 3]), quant: aq }, QIn { data: &b, shape: shape(&[3]), quant: bq });
    scalar::add(a_in, b_in, Act::NONE, QOut { data: &mut y, shape: shape(&[2, 3]), quant: yq });
    assert_eq!(y, want);
    scalar::add(b_in, a_in, Act::NONE, QOut { data: &mut y, shape: shape(&[2, 3]), quant: yq });
    assert_eq!(y, want);
    // With a Relu (clamp at the zero point -1): [1 2 1 / -1 -1 -1].
    scalar::add(a_in, b_in, Act { min: -1, max: 127 }, QOut { data: &mut y, shape: shape(&[2, 3]), quant: yq });
    assert_eq!(y, [1, 2, 1, -1, -1, -1]);
}

#[test]
fn resize_nearest_asymmetric_2x() {
    // x: 1x2x2x1 [1 2 / 3 -4], scale 1; y scale 0.5, so values double.
    // Asymmetric: source = o / 2 = 0, 0.5, 1, 1.5 for o = 0..4.
    // round_prefer_floor: 0 0 1 1 (halves down), every pixel repeated 2x2:
    //   2 2 4 4 / 2 2 4 4 / 6 6 -8 -8 / 6 6 -8 -8.
    // round_prefer_ceil: 0 1 1 2 -> clamped 0 1 1 1:
    //   2 4 4 4 / 6 -8 -8 -8 (three times).
    let x = [1i8, 2, 3, -4];
    let floor = [2i8, 2, 4, 4, 2, 2, 4, 4, 6, 6, -8, -8, 6, 6, -8, -8];
    let ceil = [2i8, 4, 4, 4, 6, -8, -8, -8, 6, -8, -8, -8, 6, -8, -8, -8];
    for (mode, want) in [(NearestMode::RoundPreferFloor, floor), (NearestMode::RoundPreferCeil, ceil)] {
        let p = Resize { mode: ResizeMode::Nearest(mode), coord: CoordTransform::Asymmetric, scale: [2.0, 2.0] };
        let mut y = [0i8; 16];
        scalar::resize(
            &p,
            QIn { data: &x, shape: shape(&[1, 2, 2, 1]), quant: q(1.0, 0) },
            QOut { data: &mut y, shape: shape(&[1, 4, 4, 1]), quant: q(0.5, 0) },
        );
        assert_eq!(y, want, "{mode:?}");
    }
}

#[test]
fn softmax_of_three() {
    // x scale ln 2, beta 1: each step down from the row's maximum halves the
    // weight. Row [0 -1 -2]: weights 1, 1/2, 1/4, sum 7/4, so the
    // probabilities are 4/7, 2/7, 1/7 = 0.5714, 0.2857, 0.1429.
    // y scale 1/256, zero point -128: 146.29 -> 146, 73.14 -> 73,
    // 36.57 -> 37, minus 128 = [18 -55 -91].
    // Row [2 0 1] (maximum first): [18 -91 -55] in its order.
    // Row [5 5 5]: 1/3 each, 85.33 -> 85, minus 128 = -43.
    let xq = q(core::f32::consts::LN_2, 0);
    let table = softmax_table(1.0, xq);
    let x = [0i8, -1, -2, 2, 0, 1, 5, 5, 5];
    let mut y = [0i8; 9];
    scalar::softmax(
        QIn { data: &x, shape: shape(&[3, 3]), quant: xq },
        &table,
        QOut { data: &mut y, shape: shape(&[3, 3]), quant: q(1.0 / 256.0, -128) },
    );
    assert_eq!(y, [18, -55, -91, 18, -91, -55, -43, -43, -43]);
}
