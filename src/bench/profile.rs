//! Where kiln's time goes: every operator timed at each kernel level
//! ([`Session::run_observed`]), grouped by kind and window, with the
//! multiply-accumulates of each group.

use std::time::Instant;

use anyhow::Result;
use kiln_runtime::{Isa, Model, OpKind, Session, TensorInfo};

use super::stats::Stats;

/// A label that groups operators which run the same kernel (`Conv dw 3x3/2`:
/// a depthwise 3x3 convolution of stride 2), and the operator's
/// multiply-accumulates (0 outside convolutions and fully connected layers).
fn describe(kind: OpKind, inputs: &[TensorInfo<'_>], output: &TensorInfo<'_>) -> (String, u64) {
    let elements = output.shape.elements() as u64;
    match (kind, inputs) {
        (OpKind::Conv2d, [x, w, ..]) => {
            let [_, h, _, c] = x.shape.nhwc();
            let [_, kh, kw, per_group] = w.shape.nhwc();
            // Stride from the sizes, rounded: `same` padding gives
            // `oh = ceil(h / s)`, valid windows on a padded input `h - k + 1`.
            let oh = output.shape.nhwc()[1].max(1);
            let stride = ((h + oh / 2) / oh).max(1);
            let kind = if per_group == 1 && c > 1 { "Conv dw" } else { "Conv" };
            let label = if stride == 1 { format!("{kind} {kh}x{kw}") } else { format!("{kind} {kh}x{kw}/{stride}") };
            (label, elements * (kh * kw * per_group) as u64)
        }
        (OpKind::FullyConnected, [_, w, ..]) => ("FullyConnected".into(), elements * w.shape.nhwc()[1] as u64),
        _ => (format!("{kind:?}"), 0),
    }
}

/// The multiply-accumulates of one inference of `model`.
pub fn macs(model: &Model<'_>) -> u64 {
    model.ops().map(|(kind, inputs, output)| describe(kind, &inputs, &output).1).sum()
}

/// Times every operator `runs` times at each session's level (the levels
/// take turns run by run) and prints the median time of each group of
/// operators per level, with the best level's share and throughput.
pub fn run(
    model: &Model<'_>,
    sessions: &mut [(Isa, Session<'_>)],
    input: &[f32],
    runs: usize,
    macs: u64,
) -> Result<()> {
    let ops: Vec<(String, u64)> = model.ops().map(|(kind, inputs, output)| describe(kind, &inputs, &output)).collect();
    // times[level][op][run], in ms.
    let mut times = vec![vec![vec![0f64; runs]; ops.len()]; sessions.len()];
    for (_, session) in sessions.iter_mut() {
        session.set_input_f32(0, input)?;
        session.run();
    }
    for r in 0..runs {
        for ((_, session), times) in sessions.iter_mut().zip(&mut times) {
            let mut last = Instant::now();
            session.run_observed(|op, _| {
                let now = Instant::now();
                times[op][r] = (now - last).as_secs_f64() * 1e3;
                last = now;
            });
        }
    }
    let medians: Vec<Vec<f64>> =
        times.iter().map(|level| level.iter().map(|t| Stats::of(t).median).collect()).collect();

    // Groups in order of first appearance, with their operator count and MACs.
    let mut groups: Vec<(String, usize, u64)> = Vec::new();
    let mut group_of = Vec::with_capacity(ops.len());
    for (label, m) in &ops {
        let g = match groups.iter().position(|(l, ..)| l == label) {
            Some(g) => g,
            None => {
                groups.push((label.clone(), 0, 0));
                groups.len() - 1
            }
        };
        groups[g].1 += 1;
        groups[g].2 += m;
        group_of.push(g);
    }
    let per_group = |level: &[f64]| {
        let mut ms = vec![0f64; groups.len()];
        for (op, &t) in level.iter().enumerate() {
            ms[group_of[op]] += t;
        }
        ms
    };
    let ms: Vec<Vec<f64>> = medians.iter().map(|l| per_group(l)).collect();
    let best =
        ms.iter().enumerate().min_by(|a, b| a.1.iter().sum::<f64>().total_cmp(&b.1.iter().sum())).map_or(0, |(i, _)| i);
    let best_total: f64 = ms[best].iter().sum();

    println!();
    println!("per-operator profile: median ms of each operator over {runs} runs, summed per group");
    print!("{:<18} {:>4} {:>8}", "operators", "n", "MMAC");
    for (isa, _) in sessions.iter() {
        print!(" {:>11}", isa.name());
    }
    println!(" {:>7} {:>8}", "share", "GMAC/s");
    let mut order: Vec<usize> = (0..groups.len()).collect();
    order.sort_by(|&a, &b| ms[best][b].total_cmp(&ms[best][a]));
    for g in order {
        let (label, count, m) = &groups[g];
        print!("{label:<18} {count:>4} {:>8.1}", *m as f64 / 1e6);
        for level in &ms {
            print!(" {:>11.3}", level[g]);
        }
        let share = 100.0 * ms[best][g] / best_total;
        let rate = if *m > 0 { format!("{:.1}", *m as f64 / (ms[best][g] * 1e6)) } else { "-".into() };
        println!(" {share:>6.1}% {rate:>8}");
    }
    print!("{:<18} {:>4} {:>8.1}", "total", ops.len(), macs as f64 / 1e6);
    for level in &ms {
        print!(" {:>11.3}", level.iter().sum::<f64>());
    }
    println!(" {:>6.1}% {:>8.1}", 100.0, macs as f64 / (best_total * 1e6));
    Ok(())
}
