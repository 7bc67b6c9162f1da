//! Normalizations over the last dimension: softmax (with the table from
//! `quant::softmax_table`) and l2_norm.

use kiln_runtime::kernels::{scalar, QIn, QOut};
use kiln_runtime::quant::softmax_table;
use kiln_runtime::Quant;
use proptest::prelude::*;

use crate::reference::{calibrate, check, quant, reals, run, shape, Rng};

/// Dimensions with a last dimension (the rows) of `row` elements.
fn dims(row: core::ops::RangeInclusive<usize>) -> impl Strategy<Value = Vec<usize>> {
    (proptest::collection::vec(1..=3usize, 0..=3), row).prop_map(|(mut d, r)| {
        d.push(r);
        d
    })
}

#[test]
fn softmax_matches_f64() {
    let beta = prop_oneof![Just(1.0f32), 0.5..2.0f32];
    run("softmax", 1024, 0.05, (dims(2..=16), beta, any::<u64>()), |(d, beta, seed)| {
        let mut rng = Rng(*seed);
        let xq = quant(rng.uniform(0.02, 0.2), rng.int(-64, 64));
        // Inputs spanning at most 8 in beta * x, so that few outputs round
        // to nothing.
        let span = ((8.0 / (f64::from(*beta) * f64::from(xq.scale))) as i32).min(255);
        let lo = rng.int(-128, 127 - span);
        let x = rng.i8s_in(d.iter().product(), lo, lo + span);
        let table = softmax_table(*beta, xq);
        let row = *d.last().unwrap();
        // softmax(beta * x) per row: exp(beta * (x - max)) / Σ exp(beta * (x - max)).
        let want: Vec<f64> = reals(&x, xq)
            .chunks(row)
            .flat_map(|r| {
                let max = r.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let e: Vec<f64> = r.iter().map(|&v| (f64::from(*beta) * (v - max)).exp()).collect();
                let sum: f64 = e.iter().sum();
                e.into_iter().map(move |v| v / sum)
            })
            .collect();
        let yq = quant(1.0 / 256.0, -128);
        let mut y = vec![0i8; x.len()];
        scalar::softmax(
            QIn { data: &x, shape: shape(d), quant: xq },
            &table,
            QOut { data: &mut y, shape: shape(d), quant: yq },
        );
        check(&|| format!("softmax: x {d:?} {xq:?}, beta {beta}"), &y, &want, d, yq)
    });
}

#[test]
fn l2_norm_matches_f64() {
    run(
        "l2_norm",
        1024,
        0.05,
        (dims(2..=32), any::<bool>(), 0.9..1.2f64, any::<u64>()),
        |(d, fixed, stretch, seed)| {
            let mut rng = Rng(*seed);
            let xq = quant(rng.uniform(0.01, 0.2), rng.int(-64, 64));
            let row = *d.last().unwrap();
            // Random rows, one in eight of them all zero.
            let x: Vec<i8> = (0..d.iter().product::<usize>() / row)
                .flat_map(|_| if rng.below(8) == 0 { vec![xq.zero_point as i8; row] } else { rng.i8s(row) })
                .collect();
            // x / sqrt(Σ x²) per row; a zero row stays zero (kiln's convention:
            // ONNX LpNormalization leaves 0/0 undefined).
            let want: Vec<f64> = reals(&x, xq)
                .chunks(row)
                .flat_map(|r| {
                    let norm = r.iter().map(|v| v * v).sum::<f64>().sqrt();
                    r.iter().map(move |&v| if norm == 0.0 { 0.0 } else { v / norm }).collect::<Vec<_>>()
                })
                .collect();
            // TFLite's fixed output quantization, or calibrated.
            let yq = if *fixed { Quant { scale: 1.0 / 128.0, zero_point: 0 } } else { calibrate(&want, *stretch) };
            let mut y = vec![0i8; x.len()];
            scalar::l2_norm(
                QIn { data: &x, shape: shape(d), quant: xq },
                QOut { data: &mut y, shape: shape(d), quant: yq },
            );
            check(&|| format!("l2_norm: x {d:?} {xq:?}"), &y, &want, d, yq)
        },
    );
}
