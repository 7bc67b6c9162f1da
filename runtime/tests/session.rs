//! End-to-end runs of a small multi-operator model.

mod support;

use kiln_runtime::format::AlignedBytes;
use kiln_runtime::{Model, Session};

fn image(seed: u64) -> Vec<f32> {
    let mut rng = support::Rng(seed);
    (0..16 * 16 * 3).map(|_| (rng.next() % 256) as f32).collect()
}

#[test]
fn small_net_gives_a_unit_embedding() {
    let file = AlignedBytes::copy_of(&support::small_net(7));
    let model = Model::from_bytes(&file).unwrap();
    let mut session = Session::new(&model).unwrap();
    let mut out = [0f32; 8];
    session.run_f32(&[&image(1)], &mut [&mut out]).unwrap();
    let norm: f32 = out.iter().map(|v| v * v).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 0.03, "norm {norm}, embedding {out:?}");
    assert!(out.iter().filter(|v| v.abs() > 0.05).count() >= 3, "embedding {out:?} is degenerate");
}

#[test]
fn borrowed_arena_gives_the_same_output() {
    let file = AlignedBytes::copy_of(&support::small_net(7));
    let model = Model::from_bytes(&file).unwrap();
    let mut owned = Session::new(&model).unwrap();
    owned.set_input_f32(0, &image(2)).unwrap();
    owned.run();
    let expected = owned.output_i8(0).unwrap().to_vec();

    let mut buffer = AlignedBytes::zeroed(model.arena_size());
    let mut borrowed = Session::with_arena(&model, &mut buffer).unwrap();
    borrowed.set_input_f32(0, &image(2)).unwrap();
    borrowed.run();
    assert_eq!(borrowed.output_i8(0).unwrap(), &expected[..]);
}

#[test]
fn observer_sees_every_op_output_in_order() {
    let file = AlignedBytes::copy_of(&support::small_net(7));
    let model = Model::from_bytes(&file).unwrap();
    let mut session = Session::new(&model).unwrap();
    session.set_input_f32(0, &image(3)).unwrap();
    let mut seen = Vec::new();
    session.run_observed(|op, bytes| seen.push((op, bytes.to_vec())));
    let sizes: Vec<_> = model.ops().enumerate().map(|(op, (_, _, y))| (op, y.shape.elements())).collect();
    assert_eq!(
        seen.iter().map(|(op, bytes)| (*op, bytes.len())).collect::<Vec<_>>(),
        sizes,
        "int8: a byte per element"
    );
    // The last op writes the graph output, which a plain run reproduces.
    let last = seen.last().unwrap().1.clone();
    session.run();
    assert_eq!(unsigned_bytes(session.output_i8(0).unwrap()), last);
}

fn unsigned_bytes(values: &[i8]) -> Vec<u8> {
    values.iter().map(|&v| v as u8).collect()
}

#[test]
fn a_model_that_owns_its_bytes_runs_as_a_borrowing_one() {
    let file = AlignedBytes::copy_of(&support::small_net(7));
    let borrowing = Model::from_bytes(&file).unwrap();
    let owning = Model::from_aligned_bytes(file.clone()).unwrap();
    assert_eq!(owning.info(), borrowing.info());
    let run = |model: &Model<'_>| {
        let mut session = Session::new(model).unwrap();
        session.set_input_f32(0, &image(3)).unwrap();
        session.run();
        session.output_i8(0).unwrap().to_vec()
    };
    assert_eq!(run(&owning), run(&borrowing));
    let mut damaged = file.clone();
    damaged[100] ^= 1;
    assert!(matches!(Model::from_aligned_bytes(damaged), Err(kiln_runtime::Error::Checksum { .. })));
}

#[test]
fn caller_mistakes_are_errors() {
    let file = AlignedBytes::copy_of(&support::small_net(7));
    let model = Model::from_bytes(&file).unwrap();
    let mut small = AlignedBytes::zeroed(model.arena_size() - 1);
    let err = Session::with_arena(&model, &mut small).err().unwrap().to_string();
    assert!(err.contains("needs"), "{err}");

    let mut session = Session::new(&model).unwrap();
    let err = session.set_input_f32(0, &[0.0; 5]).unwrap_err().to_string();
    assert_eq!(err, "input 0 holds 768 elements, the buffer given has 5");
    let err = session.set_input_f32(1, &[0.0; 768]).unwrap_err().to_string();
    assert_eq!(err, "input 1 asked for, the model has 1 inputs");
    let err = session.output_f32(0, &mut [0.0; 3]).unwrap_err().to_string();
    assert_eq!(err, "output 0 holds 8 elements, the buffer given has 3");

    // NaN and infinities have no int8 value: refused, naming where.
    for (value, name) in [(f32::NAN, "NaN"), (f32::INFINITY, "inf"), (f32::NEG_INFINITY, "-inf")] {
        let mut x = image(1);
        x[300] = value;
        let err = session.set_input_f32(0, &x).unwrap_err().to_string();
        assert!(err.starts_with(&format!("input 0 holds {name} at element 300: inputs must be finite")), "{err}");
    }
}

#[test]
fn info_reports_the_model() {
    let file = AlignedBytes::copy_of(&support::small_net(7));
    let model = Model::from_bytes(&file).unwrap();
    let info = model.info();
    assert_eq!(info.ops, 9);
    // The lowest minor version that holds its operators (none newer than 2.0).
    assert_eq!(info.version, (kiln_runtime::format::VERSION_MAJOR, 0));
    assert!(info.weight_bytes > 16 * 27 + 16 * 9 + 16 * 16);
    assert_eq!(info.arena_bytes, model.arena_size());
    let input = model.inputs().next().unwrap();
    assert_eq!((input.name, input.shape.dims()), ("image", &[1, 16, 16, 3][..]));
}
