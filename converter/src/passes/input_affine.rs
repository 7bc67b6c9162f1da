//! Folds an input normalisation `x * s + t` (SFace: `(x - 127.5) * 0.0078125`)
//! into the first conv, so the graph input stays raw data (pixels 0..255),
//! which the runtime quantizes exactly.
//!
//! `conv(x * s + t)` is a conv with weights `w * s[i]` (per input channel `i`)
//! and bias `b + Σ w t[i]`. The original model's zero padding is a zero in
//! normalised units, i.e. the raw value `-t / s`: the folded conv pads with
//! that value, so borders stay exact.

use anyhow::{ensure, Result};

use super::{per_channel, sole_consumer};
use crate::ir::{Graph, Op};

pub(super) fn fold_into_first_conv(graph: &mut Graph) -> Result<()> {
    let Some(affine) = graph.consumers(graph.input).first().copied() else {
        return Ok(());
    };
    if graph.consumers(graph.input).len() != 1 || !matches!(graph.nodes[affine].op, Op::ScaleShift { .. }) {
        return Ok(());
    }
    let Some(conv) = sole_consumer(graph, affine) else {
        return Ok(());
    };
    let Op::ScaleShift { scale, shift } = graph.nodes[affine].op.clone() else { unreachable!() };
    let Op::Conv2d { weights, weight_shape, bias, groups, pads, pad_value, .. } = &mut graph.nodes[conv].op else {
        return Ok(());
    };
    let [o, _, _, ci] = *weight_shape;
    let channels = ci * *groups;
    let (scale, shift) = (per_channel(&scale, channels), per_channel(&shift, channels));
    let raw_zero: Vec<f32> = scale.iter().zip(&shift).map(|(s, t)| -t / s).collect();
    ensure!(
        *pads == [0; 4] || raw_zero.iter().all(|&z| z == raw_zero[0]),
        "cannot fold a per-channel input normalisation with different zero points into padded conv `{}`",
        graph.nodes[conv].name
    );
    let filter_len = weights.len() / o;
    for (oc, filter) in weights.chunks_mut(filter_len).enumerate() {
        let first_channel = oc / (o / *groups) * ci;
        for (k, w) in filter.iter_mut().enumerate() {
            let c = first_channel + k % ci;
            bias[oc] += *w * shift[c];
            *w *= scale[c];
        }
    }
    *pad_value = raw_zero[0];
    log::info!("folded the input normalisation into conv `{}` (pads with {})", graph.nodes[conv].name, raw_zero[0]);
    let input = graph.input;
    graph.remove_node_replacing_output(affine, input);
    Ok(())
}
