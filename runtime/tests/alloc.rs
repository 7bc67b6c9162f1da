//! Heap use, measured with a counting global allocator: inference allocates
//! nothing, and opening a model does not copy its weights to the heap.
//!
//! The test harness runs tests on parallel threads, so the allocator counts
//! per thread, and only while a thread is inside [`measure`].

mod support;

use core::alloc::{GlobalAlloc, Layout};
use core::cell::Cell;
use std::alloc::System;

use kiln_runtime::format::{AlignedBytes, ModelWriter};
use kiln_runtime::ops::Act;
use kiln_runtime::{DType, Model, OpKind, Quant, Session};

struct Counting;

thread_local! {
    static ACTIVE: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
    static BYTES: Cell<usize> = const { Cell::new(0) };
}

fn record(size: usize) {
    // `try_with`: the allocator also runs while thread locals are torn down.
    if ACTIVE.try_with(Cell::get).unwrap_or(false) {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        let _ = BYTES.try_with(|n| n.set(n.get() + size));
    }
}

// SAFETY: every call is forwarded unchanged to `System`, which upholds the
// `GlobalAlloc` contract; counting touches only const-initialized thread
// locals, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        // SAFETY: the caller's contract for `alloc` is passed on as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        record(new_size);
        // SAFETY: as for `alloc`; `ptr` and `layout` come from this allocator,
        // which is `System`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Heap allocations (including reallocations) and bytes requested by this
/// thread while it ran `f`.
fn measure<T>(f: impl FnOnce() -> T) -> (T, usize, usize) {
    ALLOCATIONS.with(|n| n.set(0));
    BYTES.with(|n| n.set(0));
    ACTIVE.with(|a| a.set(true));
    let out = f();
    ACTIVE.with(|a| a.set(false));
    (out, ALLOCATIONS.with(Cell::get), BYTES.with(Cell::get))
}

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
