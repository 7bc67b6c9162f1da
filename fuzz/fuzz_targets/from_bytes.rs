//! Loads arbitrary bytes as a model, with a correct checksum so that the
//! structural validator is what is exercised, and runs whatever loads.
//! Loading must never panic; a model that loads must run without panicking.
#![no_main]

use kiln_runtime::format::{self, AlignedBytes};
use kiln_runtime::{Limits, Model, Session};
use libfuzzer_sys::fuzz_target;

/// A valid model may legitimately need a large arena or long runs; the
/// fuzzer's inputs are small, and a session for them should be too: the
/// caller's limits (the path a board application takes) refuse the rest.
const LIMITS: Limits = Limits { arena_bytes: 16 << 20, tensor_elements: 16 << 20, work: 1 << 30 };

fuzz_target!(|data: &[u8]| {
    let mut bytes = AlignedBytes::copy_of(data);
    // A hostile file carries a valid checksum: recompute it. The length
    // field is left as it is, so that the fuzzer finds it in the seeds.
    format::reseal(&mut bytes);
    let Ok(model) = Model::from_bytes(&bytes) else {
        return;
    };
    // Everything a caller can ask of a loaded model.
    let _ = format!("{model:?} {:?}", model.info());
    let inputs: Vec<usize> = model.inputs().map(|t| t.shape.elements()).collect();
    let outputs: Vec<usize> = model.outputs().map(|t| t.shape.elements()).collect();
    for (kind, ins, out) in model.ops() {
        let _ = (kind, ins.len(), out.name.len());
    }
    if model.check_limits(LIMITS).is_err() {
        return;
    }
    let mut session = Session::new(&model).expect("a session of a loaded model");
    for (i, &n) in inputs.iter().enumerate() {
        let values: Vec<f32> = (0..n).map(|k| (k % 256) as f32 - 100.0).collect();
        session.set_input_f32(i, &values).expect("input of the model's own size");
    }
    session.run();
    for (i, &n) in outputs.iter().enumerate() {
        let mut values = vec![0f32; n];
        session.output_f32(i, &mut values).expect("output of the model's own size");
    }
});
