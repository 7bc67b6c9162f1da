//! `kiln eval`: a .kiln model against the float ONNX model run by tract.

use std::path::Path;

use anyhow::{ensure, Result};
use kiln_converter::import::OnnxModel;
use kiln_converter::input;
use kiln_converter::ir::layout;
use kiln_converter::reference::Reference;
use kiln_runtime::{Model, Session};

use crate::convert::progress;
use crate::inputs::{label, InputArgs};
use crate::run::cosine;

/// Index of the largest value.
fn argmax(v: &[f32]) -> usize {
    v.iter().enumerate().fold((0, f32::MIN), |b, (i, &x)| if x > b.1 { (i, x) } else { b }).0
}

/// Runs both models on every input of `data` and prints, per input and
/// output, the cosine similarity of kiln's output to the float one; then
/// mean and min, and top-1 agreement for classifier-shaped outputs.
pub fn run(onnx_path: &Path, kiln_path: &Path, data: &Path, layers: bool, args: &InputArgs) -> Result<()> {
    ensure!(!layers, "--layers is not available yet");
    let options = args.image_options()?;
    let onnx = OnnxModel::load(onnx_path)?;
    let kiln = Model::open(kiln_path)?;
    let names: Vec<String> = onnx.graph().output.iter().map(|o| o.name.clone()).collect();
    ensure!(
        names.len() == kiln.outputs().len(),
        "{} has {} outputs, {} has {}: was it converted from this ONNX file?",
        onnx_path.display(),
        names.len(),
        kiln_path.display(),
        kiln.outputs().len()
    );
    let reference = Reference::new(&onnx, &names)?;
    let samples = input::load_dir(data, &onnx.input_shape, &options)?;
    let mut session = Session::new(&kiln)?;
    let mut outputs: Vec<Vec<f32>> = kiln.outputs().map(|o| vec![0f32; o.shape.elements()]).collect();

    let mut cosines = vec![Vec::new(); names.len()];
    let mut top1 = vec![0usize; names.len()];
    let bar = progress(samples.len(), "evaluating");
    let mut rows = Vec::new();
    for sample in &samples {
        let expected = reference.run(&sample.values)?;
        let nhwc = layout::nchw_to_nhwc(&sample.values, &onnx.input_shape);
        let mut views: Vec<&mut [f32]> = outputs.iter_mut().map(|o| o.as_mut_slice()).collect();
        session.run_f32(&[&nhwc], &mut views)?;
        let mut row = label(sample);
        for (i, (want, info)) in expected.iter().zip(kiln.outputs()).enumerate() {
            let want = match info.shape.dims() {
                &[n, h, w, c] => layout::nchw_to_nhwc(want, &[n, c, h, w]),
                _ => want.clone(),
            };
            let c = cosine(&outputs[i], &want);
            cosines[i].push(c);
            top1[i] += usize::from(argmax(&outputs[i]) == argmax(&want));
            row += &format!("  {c:.5}");
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
    Ok(())
}
