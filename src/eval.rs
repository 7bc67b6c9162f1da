//! `kiln eval`: a .kiln model against the float ONNX model run by tract.

use std::path::Path;

use anyhow::{ensure, Result};
use kiln_converter::import::OnnxModel;
use kiln_converter::input;
use kiln_converter::ir::layout;
use kiln_converter::metrics::disagreeing_pairs;
use kiln_converter::reference::Reference;
use kiln_runtime::Session;

use crate::convert::progress;
use crate::inputs::{label, InputArgs, ShapeArgs};
use crate::layers::{to_kiln_layout, LayerProbe};
use crate::run::{cosine, open_model};

/// Index of the largest value.
fn argmax(v: &[f32]) -> usize {
    v.iter().enumerate().fold((0, f32::MIN), |b, (i, &x)| if x > b.1 { (i, x) } else { b }).0
}

/// What `kiln eval` reports beyond the outputs' cosine similarity.
pub struct Checks {
    /// The SQNR of every layer's output.
    pub layers: bool,
    /// Pair decisions at this cosine threshold, against the float model's.
    pub pairs: Option<f64>,
}

/// Parses a same/different threshold: a cosine, so a number from -1 to 1.
pub fn cosine_threshold(s: &str) -> std::result::Result<f64, String> {
    let t: f64 = s.parse().map_err(|e| format!("{e}"))?;
    if (-1.0..=1.0).contains(&t) {
        Ok(t)
    } else {
        Err(format!("{t} is not a cosine similarity (from -1 to 1; SFace's same-person threshold is 0.363)"))
    }
}

/// Runs both models on every input of `data` and prints, per input and
/// output, the cosine similarity of kiln's output to the float one; then
/// mean and min, and top-1 agreement for classifier-shaped outputs.
pub fn run(
    onnx_path: &Path,
    kiln_path: &Path,
    data: &Path,
    checks: Checks,
    args: &InputArgs,
    shape: &ShapeArgs,
) -> Result<()> {
    let options = args.image_options()?;
    let kiln = open_model(kiln_path)?;
    let onnx = OnnxModel::load_shaped(onnx_path, shape.or_from(&kiln).as_ref())?;
    let names: Vec<String> = onnx.graph().output.iter().map(|o| o.name.clone()).collect();
    ensure!(
        names.len() == kiln.outputs().len(),
        "{} has {} outputs, {} has {}: was it converted from this ONNX file?",
        onnx_path.display(),
        names.len(),
        kiln_path.display(),
        kiln.outputs().len()
    );
    let mut probe = checks.layers.then(|| LayerProbe::new(&onnx, &kiln));
    let probed = probe.as_ref().map(LayerProbe::names).unwrap_or_default();
    let reference = Reference::new(&onnx, &[names.clone(), probed].concat())?;
    let samples = input::load_dir(data, &onnx.input_shape, &options)?;
    let mut session = Session::new(&kiln)?;
    let mut outputs: Vec<Vec<f32>> = kiln.outputs().map(|o| vec![0f32; o.shape.elements()]).collect();

    let mut cosines = vec![Vec::new(); names.len()];
    // The first output of every input, from each model, for the pairs.
    let (mut firsts, mut float_firsts) = (Vec::new(), Vec::new());
    let mut top1 = vec![0usize; names.len()];
    let bar = progress(samples.len(), "evaluating");
    let mut rows = Vec::new();
    for sample in &samples {
        let mut expected = reference.run(&sample.values)?;
        let probed = expected.split_off(names.len());
        let nhwc = layout::nchw_to_nhwc(&sample.values, &onnx.input_shape);
        session.set_input_f32(0, &nhwc)?;
        match &mut probe {
            Some(probe) => probe.run(&mut session, &probed),
            None => session.run(),
        }
        for (i, out) in outputs.iter_mut().enumerate() {
            session.output_f32(i, out)?;
        }
        let mut row = label(sample);
        for (i, (want, info)) in expected.iter().zip(kiln.outputs()).enumerate() {
            ensure!(
                want.len() == outputs[i].len(),
                "output {i} `{}` has {} values in {} and {} in {}: was it converted from this ONNX file, at this \
                 input shape?",
                names[i],
                outputs[i].len(),
                kiln_path.display(),
                want.len(),
                onnx_path.display()
            );
            let want = to_kiln_layout(want, info.shape.dims());
            let c = cosine(&outputs[i], &want);
            cosines[i].push(c);
            top1[i] += usize::from(argmax(&outputs[i]) == argmax(&want));
            row += &format!("  {c:.5}");
            if i == 0 {
                firsts.push(outputs[0].clone());
                float_firsts.push(want);
            }
        }
        rows.push(row);
        bar.inc(1);
    }
    bar.finish_and_clear();
    println!("cosine similarity of kiln's output to the float model's (tract), per input and output:");
    for row in rows {
        println!("  {row}");
    }
    for (i, name) in names.iter().enumerate() {
        let c = &cosines[i];
        let mean = c.iter().sum::<f64>() / c.len() as f64;
        let min = c.iter().copied().fold(f64::INFINITY, f64::min);
        print!("output {i} `{name}`: cosine mean {mean:.5}, min {min:.5} over {} inputs", c.len());
        let classifier = kiln.outputs().nth(i).is_some_and(|o| matches!(o.shape.dims(), &[1, k] if k > 1));
        if classifier {
            print!("; top-1 (argmax) agreement {}/{}", top1[i], c.len());
        }
        println!();
    }
    if let Some(threshold) = checks.pairs {
        let (disagree, pairs) = disagreeing_pairs(&float_firsts, &firsts, threshold);
        println!(
            "output 0 `{}`: same/different decisions at cosine {threshold} agree with the float model's on {}/{pairs} pairs",
            names[0],
            pairs - disagree.len()
        );
        for (i, j) in disagree {
            println!(
                "  disagree: {} ~ {}: float {:.4}, kiln {:.4}",
                label(&samples[i]),
                label(&samples[j]),
                cosine(&float_firsts[i], &float_firsts[j]),
                cosine(&firsts[i], &firsts[j])
            );
        }
    }
    if let Some(probe) = probe {
        probe.print();
    }
    Ok(())
}
