//! Heap use, measured with a counting global allocator: inference allocates
//! nothing, and opening a model does not copy its weights to the heap.

mod counting;
mod support;

use kiln_runtime::format::{AlignedBytes, ModelWriter};
use kiln_runtime::ops::Act;
use kiln_runtime::{DType, Model, OpKind, Quant, Session};

use counting::measure;

#[test]
fn the_counter_counts() {
    let (v, allocations, bytes) = measure(|| vec![1u8; 1000]);
    assert_eq!((v.len(), allocations, bytes), (1000, 1, 1000));
}

#[test]
fn inference_allocates_nothing() {
    let file = AlignedBytes::copy_of(&support::small_net(7));
    let model = Model::from_bytes(&file).unwrap();
    let mut session = Session::new(&model).unwrap();
    let mut rng = support::Rng(3);
    let image: Vec<f32> = (0..16 * 16 * 3).map(|_| (rng.next() % 256) as f32).collect();
    let mut embedding = [0f32; 8];
    let mut sum = 0.0;
    let ((), allocations, bytes) = measure(|| {
        for _ in 0..100 {
            session.set_input_f32(0, &image).unwrap();
            session.run();
            session.output_f32(0, &mut embedding).unwrap();
            sum += embedding[0];
        }
    });
    println!("small_net, 100 x (set_input_f32, run, output_f32): {allocations} allocations, {bytes} bytes");
    assert_eq!((allocations, bytes), (0, 0));
    assert!(embedding.iter().any(|&v| v != 0.0) && sum.is_finite(), "the model did not run: {embedding:?}");

    // The same through run_f32, and on a borrowed arena.
    let mut arena = AlignedBytes::zeroed(model.arena_size());
    let mut borrowed = Session::with_arena(&model, &mut arena).unwrap();
    let (result, allocations, bytes) =
        measure(|| (0..100).try_for_each(|_| borrowed.run_f32(&[&image], &mut [&mut embedding])));
    result.unwrap();
    println!("small_net, 100 x run_f32 on a borrowed arena: {allocations} allocations, {bytes} bytes");
    assert_eq!((allocations, bytes), (0, 0));
}

#[test]
fn inference_with_a_float_island_allocates_nothing() {
    let file = AlignedBytes::copy_of(&support::float_island(5));
    let model = Model::from_bytes(&file).unwrap();
    let mut session = Session::new(&model).unwrap();
    let mut rng = support::Rng(8);
    let input: Vec<f32> = (0..12 * 12 * 8).map(|_| rng.f32_in(-5.0, 5.0)).collect();
    let (mut softmax, mut product) = ([0f32; 20], vec![0f32; 12 * 12 * 12]);
    let ((), allocations, bytes) = measure(|| {
        for _ in 0..20 {
            session.run_f32(&[&input], &mut [&mut softmax, &mut product]).unwrap();
        }
    });
    println!("float island, 20 x run_f32: {allocations} allocations, {bytes} bytes");
    assert_eq!((allocations, bytes), (0, 0));
    let total: f32 = softmax.iter().sum();
    assert!((total - 1.0).abs() < 1e-5, "the softmax does not sum to 1: {softmax:?}");
    assert!(product.iter().any(|&v| v != 0.0), "the matrix product is all zero");
}

/// Three fully connected layers of 2048 x 2048 int8 weights: 12 MiB.
fn big_model() -> Vec<u8> {
    const N: usize = 2048;
    let mut rng = support::Rng(11);
    let mut w = ModelWriter::new();
    let q = Quant { scale: 0.05, zero_point: 0 };
    let mut x = w.activation("x", DType::I8, &[1, N], q);
    w.inputs(&[x]);
    for layer in 0..3 {
        let weights = w.fc_weights(&format!("fc{layer}.w"), [N, N], 0.01, &rng.i8s(N * N));
        let bias = w.constant_i32(&format!("fc{layer}.b"), &vec![0; N]);
        let multiplier = w.constant_f32(&format!("fc{layer}.m"), &vec![0.05 * 0.01 / 0.05 / 16.0; N]);
        let y = w.activation(&format!("fc{layer}"), DType::I8, &[1, N], q);
        w.op(OpKind::FullyConnected, &[x, weights, bias, multiplier], &[y], &Act::NONE.words());
        x = y;
    }
    w.outputs(&[x]);
    w.finish().unwrap()
}

#[test]
fn opening_a_big_model_does_not_copy_its_weights() {
    let path = std::env::temp_dir().join(format!("kiln-alloc-test-{}.kiln", std::process::id()));
    std::fs::write(&path, big_model()).unwrap();
    let (model, allocations, bytes) = measure(|| Model::open(&path));
    std::fs::remove_file(&path).unwrap();
    let model = model.unwrap();
    let info = model.info();
    println!(
        "Model::open of a {}-byte file with {} bytes of weights: {allocations} allocations, {bytes} bytes",
        info.file_bytes, info.weight_bytes
    );
    assert!(info.weight_bytes >= 10 << 20, "{info:?}");
    assert!(bytes < 64 << 10, "{bytes} bytes allocated");
    assert!(bytes < info.weight_bytes / 100, "{bytes} bytes allocated: were the weights copied?");

    // The mapped weights are usable.
    let mut session = Session::new(&model).unwrap();
    let input: Vec<f32> = (0..2048).map(|i| (i % 13) as f32 - 6.0).collect();
    let mut output = vec![0f32; 2048];
    session.run_f32(&[&input], &mut [&mut output]).unwrap();
    assert!(output.iter().any(|&v| v != 0.0), "all-zero output");
}
