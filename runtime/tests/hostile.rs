//! Hostile and corrupt files: every one must give an `Err` that names the
//! problem, never a panic. A file that still loads must run without one.
//!
//! The checksum catches accidents, not attackers, so most mutations here
//! recompute it (`format::reseal`): what they exercise is the structural
//! validator.

mod support;

use core::panic::AssertUnwindSafe;
use std::panic::catch_unwind;

use kiln_runtime::format::{self, AlignedBytes, ModelWriter, TensorId, VERSION_MAJOR, VERSION_MINOR};
use kiln_runtime::ops::{Act, Binary, Bounds, Conv2d, FloatConv2d, Unary};
#[cfg(target_pointer_width = "64")]
use kiln_runtime::Limits;
use kiln_runtime::{DType, Model, OpKind, Quant, Session};

/// What loading (and, if that succeeds, running) a file did.
#[derive(Debug)]
enum Outcome {
    /// Loaded and ran once.
    Ran,
    /// Rejected with this message.
    Rejected(String),
}

/// Loads `bytes` from an aligned copy; if the model loads, makes a session
/// and runs it once. Panics (failing the test) if anything panicked.
fn outcome(bytes: &[u8], what: &str) -> Outcome {
    let file = AlignedBytes::copy_of(bytes);
    let result = catch_unwind(AssertUnwindSafe(|| match Model::from_bytes(&file) {
        Err(e) => Outcome::Rejected(e.to_string()),
        Ok(model) => {
            run_once(&model);
            Outcome::Ran
        }
    }));
    match result {
        Ok(o) => o,
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!("{what}: loading or running panicked: {msg}")
        }
    }
}

/// Sets every input to a ramp, runs, and reads every output.
fn run_once(model: &Model<'_>) {
    let mut session = Session::new(model).expect("a session of a loaded model");
    let inputs: Vec<usize> = model.inputs().map(|t| t.shape.elements()).collect();
    for (i, &n) in inputs.iter().enumerate() {
        let values: Vec<f32> = (0..n).map(|k| (k % 256) as f32 - 100.0).collect();
        session.set_input_f32(i, &values).unwrap();
    }
    session.run();
    let outputs: Vec<usize> = model.outputs().map(|t| t.shape.elements()).collect();
    for (i, &n) in outputs.iter().enumerate() {
        let mut values = vec![0f32; n];
        session.output_f32(i, &mut values).unwrap();
    }
}

/// The error message of a file that must be rejected.
fn rejected(bytes: &[u8], what: &str) -> String {
    match outcome(bytes, what) {
        Outcome::Rejected(msg) => msg,
        Outcome::Ran => panic!("{what}: the file was accepted"),
    }
}

/// Asserts that `bytes` are rejected with a message containing every one of
/// `needles`.
#[track_caller]
fn assert_rejected(bytes: &[u8], what: &str, needles: &[&str]) {
    let msg = rejected(bytes, what);
    for needle in needles {
        assert!(msg.contains(needle), "{what}: message {msg:?} does not contain {needle:?}");
    }
}

fn small_net() -> Vec<u8> {
    support::small_net(7)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// The section-table entry of `kind`: (entry position, offset, length).
fn section(b: &[u8], kind: [u8; 4]) -> (usize, usize, usize) {
    let count = u32_at(b, 28) as usize;
    (0..count)
        .map(|i| format::HEADER_LEN + i * format::SECTION_ENTRY_LEN)
        .find(|&e| b[e..e + 4] == kind)
        .map(|e| (e, u64_at(b, e + 8) as usize, u64_at(b, e + 16) as usize))
        .expect("section present")
}

/// Position of tensor record `i`.
fn tensor_record(b: &[u8], i: usize) -> usize {
    section(b, format::section::TENSORS).1 + 8 + i * format::TENSOR_RECORD_LEN
}

fn tensor_count(b: &[u8]) -> usize {
    u32_at(b, section(b, format::section::TENSORS).1) as usize
}

/// Index of the first tensor with this storage code (0 arena, 1 constant).
fn first_tensor(b: &[u8], storage: u8) -> usize {
    (0..tensor_count(b)).find(|&i| b[tensor_record(b, i) + 2] == storage).unwrap()
}

/// Position of operator `i`'s record in the operator list.
fn op_record(b: &[u8], i: usize) -> usize {
    let mut at = section(b, format::section::OPS).1 + 8;
    for _ in 0..i {
        let (n_in, n_out) = (usize::from(b[at + 2]), usize::from(b[at + 3]));
        let n_params = usize::from(u16::from_le_bytes([b[at + 4], b[at + 5]]));
        at += 8 + 4 * (n_in + n_out + n_params);
    }
    at
}

/// `bytes` with `f` applied and the checksum recomputed.
fn mutated(bytes: &[u8], f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut b = bytes.to_vec();
    f(&mut b);
    format::reseal(&mut b);
    b
}

#[test]
fn the_valid_file_loads_and_runs() {
    assert!(matches!(outcome(&small_net(), "small_net"), Outcome::Ran));
}

#[test]
fn every_truncation_is_rejected() {
    let file = small_net();
    for len in 0..file.len() {
        let what = format!("truncated to {len} bytes");
        let msg = rejected(&file[..len], &what);
        let expected = match len {
            0..8 => "not a .kiln file",
            8..24 => "header ends early",
            _ => "truncated or padded",
        };
        assert!(msg.contains(expected), "{what}: {msg:?} does not contain {expected:?}");

        // The same truncation with the header's length and checksum made to
        // agree: the section table is what must catch it.
        if len >= format::HEADER_LEN {
            let what = format!("truncated to {len} bytes, length field patched");
            let b = mutated(&file[..len], |b| put_u64(b, 16, len as u64));
            let msg = rejected(&b, &what);
            let named = ["section table ends early", "runs past the end of the file"];
            assert!(named.iter().any(|n| msg.contains(n)), "{what}: {msg:?}");
        }
    }
}

#[test]
fn every_byte_flip_with_a_valid_checksum_is_rejected_or_runs() {
    let file = small_net();
    let (mut ran, mut rejected) = (0, 0);
    let mut ran_at = Vec::new();
    for at in 0..file.len() {
        for mask in [0xFF, 0x01, 0x02, 0x10, 0x80] {
            let b = mutated(&file, |b| b[at] ^= mask);
            match outcome(&b, &format!("byte {at} ^ {mask:#04x}, resealed")) {
                Outcome::Ran => {
                    ran += 1;
                    ran_at.push(at);
                }
                Outcome::Rejected(msg) => {
                    rejected += 1;
                    assert!(!msg.contains("checksum"), "byte {at} ^ {mask:#04x}: resealed, yet {msg:?}");
                }
            }
        }
    }
    println!("{} bytes x 5 masks: {ran} flipped files still load and run, {rejected} are rejected", file.len());
    // The header, the section table and the tensor table (not the padding
    // between sections, nor the strings) hold nothing that can change without the validator noticing, except a tensor's name
    // (record bytes 4..12), its scale and zero point (32..40) and, within the
    // rules of the memory plan, its arena offset (40..48).
    let tens = section(&file, format::section::TENSORS).1;
    let free_in_record = |at: usize| {
        let r = (at - tens - 8) % format::TENSOR_RECORD_LEN;
        (4..12).contains(&r) || (32..48).contains(&r)
    };
    // Flipping a checksum byte and resealing gives back the same file; the
    // strings section may grow into the padding before the next section.
    let (strings_entry, strings_at, strings_len) = section(&file, format::section::STRINGS);
    let padding = (strings_at + strings_len).next_multiple_of(64) - strings_at - strings_len;
    // The minor version may rise to the reader's own: a file of an older
    // minor version is still one this runtime reads.
    let free_in_header = |at: usize| {
        (24..28).contains(&at) || (padding > 0 && at == strings_entry + 16) || (at == 10 && VERSION_MINOR > 0)
    };
    let in_tensor_table = |at: usize| (tens + 8..tens + 8 + tensor_count(&file) * 64).contains(&at);
    let table_end = format::HEADER_LEN + 5 * format::SECTION_ENTRY_LEN;
    let mut loads: Vec<usize> = ran_at.iter().copied().filter(|&at| at < table_end && !free_in_header(at)).collect();
    loads.extend(ran_at.iter().copied().filter(|&at| in_tensor_table(at) && !free_in_record(at)));
    loads.dedup();
    assert!(loads.is_empty(), "flipping bytes {loads:?} of the header, section table or tensor table still loads");
    // The weights are most of the file, and flipping a weight byte gives a
    // valid, different model: that path must have been exercised.
    let weights = section(&file, format::section::WEIGHTS);
    assert!(ran_at.iter().filter(|&&at| at >= weights.1).count() > weights.2, "{ran} flips ran");
}

#[test]
fn every_byte_flip_without_a_new_checksum_is_rejected() {
    let file = small_net();
    for at in 0..file.len() {
        for mask in [0xFF, 0x01, 0x80] {
            let mut b = file.clone();
            b[at] ^= mask;
            let what = format!("byte {at} ^ {mask:#04x}, old checksum");
            let msg = rejected(&b, &what);
            let minor = u16::from_le_bytes([b[10], b[11]]);
            let expected = match at {
                0..8 => "not a .kiln file",
                10..12 if minor <= VERSION_MINOR => "checksum",
                8..12 => "format",
                12..16 => "header flags",
                16..24 => "truncated or padded",
                _ => "checksum",
            };
            assert!(msg.contains(expected), "{what}: {msg:?} does not contain {expected:?}");
        }
    }
}

#[test]
fn sections_out_of_range_are_rejected() {
    let file = small_net();
    let len = file.len() as u64;
    for kind in format::section::ALL {
        let name = core::str::from_utf8(&kind).unwrap();
        let (entry, offset, _) = section(&file, kind);
        let past = [
            ("length past the end", offset as u64, len - offset as u64 + 1),
            ("length u64::MAX", offset as u64, u64::MAX),
            ("offset past the end", len.next_multiple_of(64) + 64, 1),
            ("offset u64::MAX - 63", u64::MAX - 63, 64),
        ];
        for (what, o, l) in past {
            let b = mutated(&file, |b| {
                put_u64(b, entry + 8, o);
                put_u64(b, entry + 16, l);
            });
            assert_rejected(&b, &format!("{name} {what}"), &[name, "runs past the end of the file"]);
        }
        let b = mutated(&file, |b| put_u64(b, entry + 8, offset as u64 - 4));
        assert_rejected(&b, &format!("{name} misaligned"), &[name, "not a multiple of 64"]);
    }
    // Two sections at the same place.
    let (_, strings_at, _) = section(&file, format::section::STRINGS);
    let (graph_entry, ..) = section(&file, format::section::GRAPH);
    let b = mutated(&file, |b| put_u64(b, graph_entry + 8, strings_at as u64));
    assert_rejected(&b, "GRPH over STRS", &["sections overlap"]);
    // A section kind twice, another missing.
    let b = mutated(&file, |b| b[graph_entry..graph_entry + 4].copy_from_slice(b"STRS"));
    assert_rejected(&b, "STRS twice", &["section STRS appears twice"]);
    let b = mutated(&file, |b| b[graph_entry..graph_entry + 4].copy_from_slice(b"GRPX"));
    assert_rejected(&b, "unknown section", &["unknown section kind"]);
}

#[test]
fn tensors_out_of_range_are_rejected() {
    let file = small_net();
    let arena = u64_at(&file, 32);
    let weights_len = section(&file, format::section::WEIGHTS).2 as u64;
    let act = tensor_record(&file, first_tensor(&file, 0));
    let constant = tensor_record(&file, first_tensor(&file, 1));
    let cases = [
        ("activation past the arena", act + 40, arena, "arena"),
        ("activation at u64::MAX - 63", act + 40, u64::MAX - 63, "arena"),
        ("constant past the weights", constant + 40, weights_len.next_multiple_of(64), "weights section"),
        ("constant at u64::MAX - 63", constant + 40, u64::MAX - 63, "weights section"),
    ];
    for (what, at, value, place) in cases {
        let b = mutated(&file, |b| put_u64(b, at, value));
        assert_rejected(&b, what, &["lie outside the", place]);
    }
    let b = mutated(&file, |b| put_u64(b, act + 40, 8));
    assert_rejected(&b, "misaligned activation", &["offset 8 is not a multiple of 64"]);
    // The header shrinks the arena under the last activation.
    let b = mutated(&file, |b| put_u64(b, 32, arena - 64));
    assert_rejected(&b, "arena too small", &["lie outside the", "arena"]);
    // The header claims more arena than the activations span: a session
    // would allocate all of it.
    for claim in [arena + 1, arena + 64, 1 << 48, u64::MAX] {
        let b = mutated(&file, |b| put_u64(b, 32, claim));
        assert_rejected(&b, &format!("arena of {claim} bytes"), &["is larger than the", "the activations span"]);
    }
    // A name past the strings section.
    let b = mutated(&file, |b| put_u32(b, act + 4, 0xFFFF_FFF0));
    assert_rejected(&b, "name past the strings", &["name lies outside the strings section"]);
    // More tensors than the table holds.
    let tens = section(&file, format::section::TENSORS).1;
    let b = mutated(&file, |b| put_u32(b, tens, u32::MAX));
    assert_rejected(&b, "tensor count u32::MAX", &["tensors do not fit"]);
    let b = mutated(&file, |b| put_u32(b, tens, tensor_count(&file) as u32 - 1));
    assert_rejected(&b, "tensor count one short", &["stray bytes after the tensor table"]);
}

#[test]
fn tensor_indices_out_of_range_are_rejected() {
    let file = small_net();
    let n = tensor_count(&file) as u32;
    let op = op_record(&file, 0);
    for bad in [n, n + 1, u32::MAX - 1] {
        let b = mutated(&file, |b| put_u32(b, op + 8, bad));
        assert_rejected(
            &b,
            "op input index",
            &["operator 0 (Conv2d)", &format!("input 0 is tensor {bad}, there are {n}")],
        );
        // The conv's output comes after its 5 inputs.
        let b = mutated(&file, |b| put_u32(b, op + 8 + 5 * 4, bad));
        assert_rejected(
            &b,
            "op output index",
            &["operator 0 (Conv2d)", &format!("output is tensor {bad}, there are {n}")],
        );
        let graph = section(&file, format::section::GRAPH).1;
        let b = mutated(&file, |b| put_u32(b, graph + 8, bad));
        assert_rejected(&b, "graph input index", &[&format!("graph input 0 is tensor {bad}, there are {n}")]);
        let b = mutated(&file, |b| put_u32(b, graph + 12, bad));
        assert_rejected(&b, "graph output index", &[&format!("graph output 0 is tensor {bad}, there are {n}")]);
    }
    // u32::MAX marks an absent optional input; a required one cannot be absent.
    let b = mutated(&file, |b| put_u32(b, op + 8, u32::MAX));
    assert_rejected(&b, "absent required input", &["input 0 is tensor 4294967295"]);
    // Operator and graph counts that do not match the bytes.
    let ops = section(&file, format::section::OPS).1;
    let b = mutated(&file, |b| put_u32(b, ops, u32::MAX));
    assert_rejected(&b, "op count u32::MAX", &["operators do not fit"]);
    let graph = section(&file, format::section::GRAPH).1;
    let b = mutated(&file, |b| put_u32(b, graph, u32::MAX));
    assert_rejected(&b, "graph input count u32::MAX", &["the graph section lists 4294967295 inputs"]);
}

#[test]
fn unknown_operator_kinds_are_rejected() {
    let file = small_net();
    let op = op_record(&file, 3);
    let next = OpKind::ALL.iter().map(|&k| k as u16).max().unwrap() + 1;
    for kind in [0u16, next, 999, u16::MAX] {
        let b = mutated(&file, |b| b[op..op + 2].copy_from_slice(&kind.to_le_bytes()));
        assert_rejected(&b, &format!("op kind {kind}"), &[&format!("operator 3: unknown kind {kind}")]);
    }
    // A known kind whose inputs and parameters do not fit.
    let b = mutated(&file, |b| b[op..op + 2].copy_from_slice(&(OpKind::Softmax as u16).to_le_bytes()));
    assert_rejected(&b, "Add relabelled as Softmax", &["operator 3 (Softmax)"]);
}

#[test]
fn wrong_versions_are_rejected() {
    let file = small_net();
    let (ours, newer) = (VERSION_MAJOR, VERSION_MINOR + 1);
    for (major, minor) in [(0u16, 0u16), (ours - 1, 0), (ours + 1, 0), (ours, newer), (u16::MAX, 0)] {
        let b = mutated(&file, |b| {
            b[8..10].copy_from_slice(&major.to_le_bytes());
            b[10..12].copy_from_slice(&minor.to_le_bytes());
        });
        let what = format!("version {major}.{minor}");
        assert_rejected(&b, &what, &[&format!("format {major}.{minor}, this runtime reads {ours}.{VERSION_MINOR}")]);
    }
    let b = mutated(&file, |b| b[0] = b'k');
    assert_rejected(&b, "bad magic", &["not a .kiln file"]);
    let b = mutated(&file, |b| b[12] = 1);
    assert_rejected(&b, "unknown flag", &["unknown header flags 0x1"]);
}

#[test]
fn misaligned_bytes_are_rejected() {
    let file = small_net();
    let mut buffer = AlignedBytes::zeroed(file.len() + 64);
    for skew in 1..64 {
        buffer[skew..skew + file.len()].copy_from_slice(&file);
        let bytes = &buffer[skew..skew + file.len()];
        let result = catch_unwind(|| Model::from_bytes(bytes).map(|_| ()).map_err(|e| e.to_string()));
        let msg = result.expect("no panic").expect_err("misaligned bytes accepted");
        assert!(msg.contains(&format!("model bytes start {skew} bytes past a 64-byte boundary")), "{msg}");
    }
}

#[test]
fn shapes_that_overflow_are_rejected() {
    let file = small_net();
    // Tensor 0 is the image, rank 4 i8: four dimensions of 2^32 - 1.
    let image = tensor_record(&file, 0);
    let huge = |dims: [u32; 4], rank: u8, len: u64| {
        mutated(&file, |b| {
            b[image + 1] = rank;
            for (i, d) in dims.iter().enumerate() {
                put_u32(b, image + 16 + 4 * i, *d);
            }
            put_u64(b, image + 48, len);
        })
    };
    let max = u32::MAX;
    let wrapped = (0..4).fold(1u64, |n, _| n.wrapping_mul(u64::from(max)));
    for len in [0, 768, wrapped] {
        let b = huge([max; 4], 4, len);
        assert_rejected(&b, &format!("4 x (2^32 - 1), len {len}"), &["tensor 0", "overflows"]);
    }
    // The element count fits, the byte count of an i32 tensor does not.
    let bias = (0..tensor_count(&file)).find(|&i| file[tensor_record(&file, i)] == DType::I32.code()).unwrap();
    let at = tensor_record(&file, bias);
    let b = mutated(&file, |b| {
        b[at + 1] = 2;
        put_u32(b, at + 16, max);
        put_u32(b, at + 20, max);
        put_u64(b, at + 48, (u64::from(max) * u64::from(max)).wrapping_mul(4));
    });
    assert_rejected(&b, "i32 tensor of (2^32 - 1)^2 elements", &[&format!("tensor {bias}"), "overflows"]);
    // Fits usize but not the arena: 2^40 bytes claimed with a matching length.
    let b = huge([1, 1 << 16, 1 << 16, 1 << 8], 4, 1 << 40);
    assert_rejected(&b, "2^40-byte activation", &["tensor 0", "lie outside the", "arena"]);
    // A zero dimension.
    let b = huge([1, 0, 16, 3], 4, 0);
    assert_rejected(&b, "empty dimension", &["tensor 0", "empty dimension"]);
}

#[test]
fn ranks_above_4_are_rejected() {
    let file = small_net();
    let image = tensor_record(&file, 0);
    for rank in [5u8, 8, 255] {
        let b = mutated(&file, |b| b[image + 1] = rank);
        assert_rejected(&b, &format!("rank {rank}"), &[&format!("tensor 0: rank {rank}, at most 4")]);
    }
    // A lower rank with the dropped dimensions not 1.
    let b = mutated(&file, |b| b[image + 1] = 3);
    assert_rejected(&b, "rank 3 with 4 dims", &["tensor 0: dimensions past its rank 3 must be 1"]);
}

/// A chain of int8 activations of `[1, 128]` (128 bytes each), for memory
/// plans: `ops` lists each operator as (kind, inputs, output), tensors by
/// index; `place` gives arena offsets. Tensor 0 is the graph input, the
/// last tensor the output.
fn plan(tensors: usize, ops: &[(OpKind, &[u32], u32)], place: &[(u32, usize)]) -> Vec<u8> {
    let mut w = ModelWriter::new();
    let q = Quant { scale: 0.1, zero_point: 0 };
    let ids: Vec<TensorId> = (0..tensors).map(|i| w.activation(&format!("t{i}"), DType::I8, &[1, 128], q)).collect();
    for &(t, at) in place {
        w.place(ids[t as usize], at);
    }
    for &(kind, inputs, output) in ops {
        let inputs: Vec<TensorId> = inputs.iter().map(|&i| ids[i as usize]).collect();
        w.op(kind, &inputs, &[ids[output as usize]], &Act::NONE.words());
    }
    w.inputs(&ids[..1]);
    w.outputs(&ids[tensors - 1..]);
    w.to_bytes()
}

#[test]
fn overlapping_memory_plans_are_rejected() {
    use OpKind::{Add, Clamp};
    // An output over the input it reads.
    let b = plan(2, &[(Clamp, &[0], 1)], &[(0, 0), (1, 0)]);
    assert_rejected(&b, "output over its input", &["memory plan: operator 0 (Clamp) writes tensor 1 over tensor 0"]);
    // Partly over it (the second half of the input).
    let b = plan(2, &[(Clamp, &[0], 1)], &[(0, 0), (1, 64)]);
    assert_rejected(
        &b,
        "output over half its input",
        &["memory plan: operator 0 (Clamp) writes tensor 1 over tensor 0"],
    );
    // Over the second input of an Add.
    let b = plan(3, &[(Clamp, &[0], 1), (Add, &[0, 1], 2)], &[(0, 0), (1, 128), (2, 128)]);
    assert_rejected(
        &b,
        "output over its second input",
        &["memory plan: operator 1 (Add) writes tensor 2 over tensor 1"],
    );
    // Over a tensor that this operator does not read but a later one does.
    let ops: &[(OpKind, &[u32], u32)] = &[(Clamp, &[0], 1), (Clamp, &[0], 2), (Add, &[1, 2], 3)];
    let b = plan(4, ops, &[(0, 0), (1, 128), (2, 128), (3, 256)]);
    assert_rejected(
        &b,
        "output over a live tensor",
        &["memory plan: operator 1 (Clamp) writes tensor 2 over tensor 1"],
    );
    // Over the graph input, still read by a later operator.
    let ops: &[(OpKind, &[u32], u32)] = &[(Clamp, &[0], 1), (Clamp, &[1], 2), (Add, &[0, 2], 3)];
    let b = plan(4, ops, &[(0, 0), (1, 128), (2, 0), (3, 256)]);
    assert_rejected(
        &b,
        "output over a live graph input",
        &["memory plan: operator 1 (Clamp) writes tensor 2 over tensor 0"],
    );
    // Over a graph output (tensor 2) written earlier.
    let ops: &[(OpKind, &[u32], u32)] = &[(Clamp, &[0], 2), (Clamp, &[0], 1)];
    let b = plan(3, ops, &[(0, 0), (1, 128), (2, 128)]);
    assert_rejected(
        &b,
        "output over a graph output",
        &["memory plan: operator 1 (Clamp) writes tensor 1 over tensor 2"],
    );

    // Reuse of memory that is no longer needed is fine: the checks above
    // are about liveness, not about sharing.
    let b = plan(3, &[(Clamp, &[0], 1), (Clamp, &[1], 2)], &[(0, 0), (1, 128), (2, 0)]);
    assert!(matches!(outcome(&b, "valid reuse"), Outcome::Ran));
    // Reading before anything writes, and writing twice.
    let b = plan(3, &[(Clamp, &[1], 2), (Clamp, &[0], 1)], &[]);
    assert_rejected(&b, "read before write", &["operator 0 (Clamp) reads tensor 1 before anything writes it"]);
    let b = plan(2, &[(Clamp, &[0], 1), (Clamp, &[0], 1)], &[]);
    assert_rejected(&b, "written twice", &["tensor 1 is written twice"]);
}

/// A model of one operator from an int8 `input` to `out`, unchecked (it may
/// be invalid).
fn one_op(kind: OpKind, input: [usize; 4], zero_point: i32, out: [usize; 4], params: &[i32]) -> Vec<u8> {
    let mut w = ModelWriter::new();
    let x = w.activation("x", DType::I8, &input, Quant { scale: 0.5, zero_point });
    let y = w.activation("y", DType::I8, &out, Quant { scale: 0.5, zero_point: 0 });
    w.op(kind, &[x], &[y], params);
    w.inputs(&[x]);
    w.outputs(&[y]);
    w.to_bytes()
}

/// Loads `file`, sets its input to `value` everywhere and runs it; returns
/// the output. Fails the test on a panic.
fn run_filled(file: &[u8], value: i8, what: &str) -> Vec<i8> {
    let file = AlignedBytes::copy_of(file);
    let model = Model::from_bytes(&file).unwrap();
    let result = catch_unwind(AssertUnwindSafe(|| {
        let mut session = Session::new(&model).unwrap();
        let n = model.inputs().next().unwrap().shape.elements();
        session.set_input_i8(0, &vec![value; n]).unwrap();
        session.run();
        session.output_i8(0).unwrap().to_vec()
    }));
    result.unwrap_or_else(|_| panic!("{what}: a valid model panicked when run"))
}

#[test]
fn extreme_but_valid_models_run() {
    // An average over 2902 x 2902 values of 255 (127 with zero point -128)
    // overflows an i32 sum.
    let pool = kiln_runtime::ops::Pool { kernel: [2902; 2], stride: [1; 2], pad: [0; 4], count_include_pad: false };
    let b = one_op(OpKind::AvgPool, [1, 2902, 2902, 1], -128, [1, 1, 1, 1], &pool.words());
    run_filled(&b, 127, "AvgPool over 2902 x 2902");

    // Nearest resize of 2^25 + 4 rows: the last source row, in f32, rounds
    // up past the input.
    use kiln_runtime::ops::{CoordTransform, NearestMode, Resize, ResizeMode};
    let h = (1 << 25) + 4;
    for mode in [ResizeMode::Nearest(NearestMode::Floor), ResizeMode::Bilinear] {
        let p = Resize { mode, coord: CoordTransform::Asymmetric, scale: [1.0, 1.0] };
        let b = one_op(OpKind::Resize, [1, h, 1, 1], 0, [1, h, 1, 1], &p.words());
        let y = run_filled(&b, 3, &format!("{mode:?} resize of {h} rows"));
        assert!(y.iter().all(|&v| v == 3), "{mode:?} resize with scale 1 changed values");
    }
}

/// A model of one two-input operator, `a` and `b` to `out`, unchecked.
fn two_op(kind: OpKind, a: &[usize], b: &[usize], out: &[usize], params: &[i32]) -> Vec<u8> {
    let mut w = ModelWriter::new();
    let q = Quant { scale: 0.5, zero_point: 0 };
    let (x, z) = (w.activation("a", DType::I8, a, q), w.activation("b", DType::I8, b, q));
    let y = w.activation("y", DType::I8, out, q);
    w.op(kind, &[x, z], &[y], params);
    w.inputs(&[x, z]);
    w.outputs(&[y]);
    w.to_bytes()
}

/// A one-`ZeroInsert` model from `x` (int8, zero point 3) to `y` (zero
/// point `y_zero`), written without checking.
fn zero_insert(x: &[usize], y: &[usize], y_zero: i32, params: &[i32]) -> Vec<u8> {
    let mut w = ModelWriter::new();
    let x = w.activation("x", DType::I8, x, Quant { scale: 0.5, zero_point: 3 });
    let y = w.activation("y", DType::I8, y, Quant { scale: 0.5, zero_point: y_zero });
    w.op(OpKind::ZeroInsert, &[x], &[y], params);
    w.inputs(&[x]);
    w.outputs(&[y]);
    w.to_bytes()
}

#[test]
fn slices_that_leave_their_input_are_rejected() {
    use OpKind::Slice;
    // Rows 0 and 2, and columns 3, 1 (backwards) of a 4x4 image.
    let b = one_op(Slice, [1, 4, 4, 1], 0, [1, 2, 2, 1], &[0, 0, 3, 0, 1, 2, -2, 1]);
    assert_eq!(run_filled(&b, 5, "a valid strided slice"), [5; 4]);
    // What is wrong, the output shape, the parameters, what the message says.
    type Case<'a> = (&'a str, [usize; 4], &'a [i32], &'a [&'a str]);
    let cases: [Case; 8] = [
        ("past the end", [1, 2, 3, 1], &[0, 0, 0, 0, 1, 2, 2, 1], &["axis 2: 3 elements from 0 by step 2", "0..4"]),
        ("before the start", [1, 2, 3, 1], &[0, 0, 1, 0, 1, 2, -1, 1], &["axis 2: 3 elements from 1 by step -1"]),
        ("a start past the end", [1, 1, 1, 1], &[0, 4, 0, 0, 1, 1, 1, 1], &["axis 1: 1 elements from 4"]),
        ("a huge step", [1, 2, 2, 1], &[0, 0, 0, 0, 1, i32::MAX, i32::MIN, 1], &["axis 1: 2 elements"]),
        ("a zero step", [1, 2, 2, 1], &[0, 0, 0, 0, 1, 0, 1, 1], &["a step is 0"]),
        ("a negative start", [1, 2, 2, 1], &[0, -1, 0, 0, 1, 1, 1, 1], &["must not be negative"]),
        ("an odd parameter count", [1, 2, 2, 1], &[0, 0, 0, 1, 1, 1, 1], &["2 per dimension expected"]),
        ("parameters for 3 axes", [1, 2, 2, 1], &[0, 0, 0, 1, 1, 1], &["slice parameters for 3 axes"]),
    ];
    for (what, out, params, needles) in cases {
        let b = one_op(Slice, [1, 4, 4, 1], 0, out, params);
        let mut all = vec!["operator 0"];
        all.extend(needles);
        assert_rejected(&b, what, &all);
    }
    // A slice moves bytes: it cannot change the quantization.
    let b = one_op(Slice, [1, 4, 4, 1], 3, [1, 2, 2, 1], &[0, 0, 0, 0, 1, 2, 2, 1]);
    assert_rejected(&b, "a slice that requantizes", &["operator 0 (Slice)", "quantization differ"]);
}

#[test]
fn malformed_max_min_and_reduce_are_rejected() {
    for kind in [OpKind::Max, OpKind::Min] {
        let name = format!("operator 0 ({kind:?})");
        let b = two_op(kind, &[1, 2, 2, 3], &[1, 1, 1, 3], &[1, 2, 2, 3], &Act::NONE.words());
        // Input `a` is 7 everywhere, `b` (never set) 0.
        let want = if kind == OpKind::Max { 7 } else { 0 };
        assert_eq!(run_filled(&b, 7, "a valid broadcast"), [want; 12]);
        let b = two_op(kind, &[1, 2, 2, 3], &[1, 1, 1, 2], &[1, 2, 2, 3], &Act::NONE.words());
        assert_rejected(&b, "an input that does not broadcast", &[&name, "input 1 of shape [1, 1, 1, 2]"]);
        let b = two_op(kind, &[2, 3], &[2, 3], &[2, 3], &[5, 4]);
        assert_rejected(&b, "an empty clamp", &["operator 0: activation range 5..=4"]);
        let b = one_op(kind, [1, 2, 2, 1], 0, [1, 2, 2, 1], &Act::NONE.words());
        assert_rejected(&b, "one input", &[&name, "1 inputs and 1 outputs, 2 to 2 inputs"]);
    }
    use OpKind::Reduce;
    let b = one_op(Reduce, [1, 2, 3, 4], 0, [1, 2, 3, 1], &[1]);
    assert_eq!(run_filled(&b, -9, "a valid channel max"), [-9; 6]);
    let b = one_op(Reduce, [1, 2, 3, 4], 0, [1, 2, 3, 1], &[2]);
    assert_rejected(&b, "an unknown mode", &["operator 0 (Reduce)", "mode 2, 0 (mean) or 1 (max) expected"]);
    let b = one_op(Reduce, [1, 2, 3, 4], 0, [1, 2, 1, 1], &[0]);
    assert_rejected(&b, "a reduction over W", &["operator 0 (Reduce)", "output has shape [1, 2, 1, 1], [1, 2, 3, 1]"]);
    let b = one_op(Reduce, [1, 2, 3, 4], 0, [1, 2, 3, 1], &[]);
    assert_rejected(&b, "no mode", &["operator 0 (Reduce)", "0 parameters, 1 expected"]);
}

#[test]
fn zero_insertion_parameters_and_shapes_are_checked() {
    let (x, y) = ([1, 3, 4, 2], [1, 5, 10, 2]);
    let b = zero_insert(&x, &y, 3, &[2, 3]);
    let out = run_filled(&b, -7, "stride 2x3");
    for (i, &v) in out.iter().enumerate() {
        let (row, col) = (i / 2 / 10, i / 2 % 10);
        let want = if row % 2 == 0 && col % 3 == 0 { -7 } else { 3 };
        assert_eq!(v, want, "output {i} (row {row}, column {col})");
    }
    let op = "operator 0 (ZeroInsert)";
    for params in [&[][..], &[2], &[2, 3, 1]] {
        let what = format!("{} parameters", params.len());
        assert_rejected(&zero_insert(&x, &y, 3, params), &what, &[op, "2 expected"]);
    }
    assert_rejected(&zero_insert(&x, &y, 3, &[0, 3]), "stride 0", &["operator 0", "stride is 0"]);
    assert_rejected(&zero_insert(&x, &y, 3, &[2, -3]), "stride -3", &["operator 0", "must not be negative"]);
    let wrong = zero_insert(&x, &[1, 6, 10, 2], 3, &[2, 3]);
    assert_rejected(&wrong, "6 rows", &[op, "output has shape [1, 6, 10, 2]", "[1, 5, 10, 2] expected"]);
    assert_rejected(&zero_insert(&x, &y, 4, &[2, 3]), "another zero point", &[op, "quantization differ"]);
    assert_rejected(&zero_insert(&[3, 8], &[5, 8], 3, &[2, 1]), "rank 2", &[op, "input has rank 2, 4 expected"]);
    // Stride 1 is a copy; a huge stride on one row is one pixel.
    let b = zero_insert(&[1, 1, 2, 1], &[1, 1, i32::MAX as usize / 64 + 1, 1], 3, &[7, i32::MAX / 64]);
    let out = run_filled(&b, 5, "huge stride");
    assert_eq!((out[0], out[out.len() - 1], out[1]), (5, 5, 3));
}

/// A Clamp from `x` to `y`, int8 activations of `dims` each (placed one
/// after the other), plus `unused` more of `unused_dims`, all at offset 0.
/// Its sizes need a 64-bit address space, as do the tests that use it (on
/// 32-bit targets the loader refuses such files as larger than any buffer).
#[cfg(target_pointer_width = "64")]
fn huge(dims: [usize; 4], unused: usize, unused_dims: [usize; 4]) -> Vec<u8> {
    let mut w = ModelWriter::new();
    let q = Quant { scale: 0.5, zero_point: 0 };
    let x = w.activation("x", DType::I8, &dims, q);
    let y = w.activation("y", DType::I8, &dims, q);
    for i in 0..unused {
        let t = w.activation(&format!("unused{i}"), DType::I8, &unused_dims, q);
        w.place(t, 0);
    }
    w.op(OpKind::Clamp, &[x], &[y], &Act::NONE.words());
    w.inputs(&[x]);
    w.outputs(&[y]);
    w.to_bytes()
}

#[test]
#[cfg(target_pointer_width = "64")]
fn an_arena_the_heap_cannot_hold_is_an_error_not_an_abort() {
    // Two activations of 128 TiB: the file is small and consistent, and its
    // arena of 256 TiB is more than a 47-bit user address space can map,
    // even where the kernel overcommits memory.
    let file = AlignedBytes::copy_of(&huge([1, 1 << 21, 1 << 16, 1 << 10], 0, [1; 4]));
    let model = Model::from_bytes(&file).expect("a consistent file loads");
    assert_eq!(model.arena_size(), 1 << 48);
    let err = Session::new(&model).err().expect("no heap holds a 256 TiB arena");
    let message = err.to_string();
    assert!(message.contains("cannot allocate the model's arena of 281474976710656 bytes"), "{message}");

    // The caller's limits refuse it before any allocation, naming what is over.
    let limits = Limits { arena_bytes: 1 << 30, ..Limits::NONE };
    let message = model.check_limits(limits).unwrap_err().to_string();
    assert!(message.contains("281474976710656 arena bytes, more than the 1073741824 allowed"), "{message}");
    let limits = Limits { work: 1 << 20, ..Limits::NONE };
    let message = model.check_limits(limits).unwrap_err().to_string();
    assert!(message.contains("steps a run, more than the 1048576 allowed"), "{message}");
    let limits = Limits { tensor_elements: 1 << 20, ..Limits::NONE };
    let message = model.check_limits(limits).unwrap_err().to_string();
    assert!(message.contains("140737488355328 elements in tensor `x`, more than the 1048576 allowed"), "{message}");
    model.check_limits(Limits { arena_bytes: 1 << 48, tensor_elements: 1 << 47, work: u64::MAX }).expect("within");
}

#[test]
#[cfg(target_pointer_width = "64")]
fn sizes_that_sum_past_the_address_space_are_rejected() {
    // Five unused activations of 2^62 bytes each, all at offset 0: each
    // fits the arena, their sum (for `info`) wraps a u64.
    let b = huge([1, 1, 1, 64], 5, [1 << 16, 1 << 16, 1 << 16, 1 << 14]);
    assert_rejected(&b, "five 2^62-byte tensors", &["the tensors' sizes add up to more bytes than the address space"]);
}

#[test]
fn bytes_outside_the_sections_are_rejected() {
    let good = small_net();
    // 64 bytes of trailing data, the header's length updated to cover them.
    let b = mutated(&good, |b| {
        b.extend([0u8; 64]);
        let len = b.len() as u64;
        put_u64(b, 16, len);
    });
    assert_rejected(&b, "trailing data", &["64 bytes at", "belong to no section"]);
    // A non-zero byte in the padding between the section table and the
    // first section.
    let table_end = format::HEADER_LEN + 5 * format::SECTION_ENTRY_LEN;
    let first = [format::section::STRINGS, format::section::TENSORS, format::section::GRAPH, format::section::OPS]
        .iter()
        .map(|&k| section(&good, k).1)
        .min()
        .unwrap();
    assert!(first > table_end, "the writer pads the table to 64 bytes");
    let b = mutated(&good, |b| b[table_end] = 0x5a);
    assert_rejected(&b, "non-zero padding", &[&format!("padding byte {table_end} is 0x5a")]);
}

/// `x` of `x_dtype` → Clamp → `y` of `y_dtype`, both graph interface.
fn interface(x_dtype: DType, y_dtype: DType) -> Vec<u8> {
    let mut w = ModelWriter::new();
    let q = Quant { scale: 0.5, zero_point: 0 };
    let x = w.activation("x", x_dtype, &[1, 4], q);
    let y = w.activation("y", y_dtype, &[1, 4], q);
    w.op(OpKind::Clamp, &[x], &[y], &Act::NONE.words());
    w.inputs(&[x]);
    w.outputs(&[y]);
    w.to_bytes()
}

#[test]
fn graph_inputs_and_outputs_are_i8_or_f32() {
    let b = interface(DType::I8, DType::I32);
    assert_rejected(&b, "an i32 output", &["graph output tensor 1 is I32; graph inputs and outputs are i8 or f32"]);
    let b = interface(DType::U8, DType::I8);
    assert_rejected(&b, "a u8 input", &["graph input tensor 0 is U8"]);
}

#[test]
fn non_finite_constants_and_huge_scales_are_rejected() {
    // A PRelu whose slope is NaN.
    let mut w = ModelWriter::new();
    let q = Quant { scale: 0.5, zero_point: 0 };
    let x = w.activation("x", DType::I8, &[1, 4], q);
    let y = w.activation("y", DType::I8, &[1, 4], q);
    let slope = w.constant_f32("slope", &[0.25, f32::NAN, 0.25, 0.25]);
    w.op(OpKind::PRelu, &[x, slope], &[y], &[]);
    w.inputs(&[x]);
    w.outputs(&[y]);
    assert_rejected(&w.to_bytes(), "a NaN slope", &["tensor 2: f32 constant value 1 is not a finite number"]);

    // An output scale near f32's limit: its real values and their squares
    // would be infinite.
    let b = one_op(OpKind::Clamp, [1, 1, 1, 4], 0, [1, 1, 1, 4], &Act::NONE.words());
    let b = mutated(&b, |b| {
        let at = tensor_record(b, 1) + 32;
        b[at..at + 4].copy_from_slice(&3.4e38f32.to_le_bytes());
    });
    assert_rejected(
        &b,
        "a scale of 3.4e38",
        &["tensor 1: scale 340000000000000000000000000000000000000 is above 1.0995116e12"],
    );
}

// Float operators, f32 activations inside the graph and f16 weights
// (format minor version 2).

/// The quantization of a test tensor of `dtype`: int8 has a scale, float
/// types are not quantized.
fn quant_of(dtype: DType) -> Quant {
    if dtype == DType::I8 {
        Quant { scale: 0.5, zero_point: 0 }
    } else {
        Quant::IDENTITY
    }
}

/// A model of one operator, unchecked: the graph inputs `xs` (activations
/// of the given dtype and dimensions), then the inputs that `more` adds
/// (constants, or [`TensorId::ABSENT`]), writing the graph output `y`.
fn float_model(
    kind: OpKind,
    xs: &[(DType, &[usize])],
    more: impl FnOnce(&mut ModelWriter) -> Vec<TensorId>,
    y: (DType, &[usize]),
    params: &[i32],
) -> Vec<u8> {
    let mut w = ModelWriter::new();
    let inputs: Vec<TensorId> = xs
        .iter()
        .enumerate()
        .map(|(i, &(dtype, dims))| w.activation(&format!("x{i}"), dtype, dims, quant_of(dtype)))
        .collect();
    let mut reads = inputs.clone();
    reads.extend(more(&mut w));
    let out = w.activation("y", y.0, y.1, quant_of(y.0));
    w.op(kind, &reads, &[out], params);
    w.inputs(&inputs);
    w.outputs(&[out]);
    w.to_bytes()
}

/// Float convolution parameters: 3x3 geometry (stride 1, padding 1) with
/// `groups`, and `bounds`.
fn float_conv_params(groups: usize, bounds: Bounds) -> FloatConv2d {
    let conv = Conv2d { stride: [1; 2], dilation: [1; 2], pad: [1; 4], groups, act: Act::NONE };
    FloatConv2d { conv, bounds }
}

/// A float convolution of `x` f32 [1,4,4,8] to `y` f32 [1,4,4,16] (3x3,
/// stride 1, padding 1) with `groups`: `affine` adds weights, bias and
/// slopes (or whatever a case puts in their place).
fn float_conv(groups: usize, affine: impl FnOnce(&mut ModelWriter) -> Vec<TensorId>) -> Vec<u8> {
    let p = float_conv_params(groups, Bounds::NONE);
    float_model(OpKind::FloatConv2d, &[(DType::F32, &[1, 4, 4, 8])], affine, (DType::F32, &[1, 4, 4, 16]), &p.words())
}

/// Float weights of `dtype` and `dims` (values in -0.5..0.5), a bias of
/// `bias` values and, if given, slopes of `slope` values.
fn float_affine(w: &mut ModelWriter, dtype: DType, dims: &[usize], bias: usize, slope: Option<usize>) -> Vec<TensorId> {
    let n: usize = dims.iter().product();
    let values: Vec<f32> = (0..n).map(|i| i as f32 / n as f32 - 0.5).collect();
    let wt = w.float_constant("w", dtype, dims, &values);
    let b = w.constant_f32("b", &vec![0.5; bias]);
    let a = slope.map_or(TensorId::ABSENT, |n| w.constant_f32("a", &vec![0.25; n]));
    vec![wt, b, a]
}

/// The bits of `v`, as a parameter word.
fn bits(v: f32) -> i32 {
    v.to_bits() as i32
}

#[test]
fn f16_tensors_are_finite_constants() {
    let dims = [3, 3, 8, 16];
    let n = 3 * 3 * 8 * 16;
    // A float convolution whose f16 weights (tensor 1) hold `bits` at
    // element 5.
    let with = |bits: u16| {
        float_conv(1, |w| {
            let mut v: Vec<u16> = (0..n).map(|i| half::f16::from_f32(i as f32 / n as f32 - 0.5).to_bits()).collect();
            v[5] = bits;
            let bytes: Vec<u8> = v.iter().flat_map(|b| b.to_le_bytes()).collect();
            let wt = w.constant("w", DType::F16, &dims, Quant::IDENTITY, &bytes);
            vec![wt, w.constant_f32("b", &[0.5; 16]), TensorId::ABSENT]
        })
    };
    // The largest finite f16, the smallest subnormal and negative zero.
    for (bits, what) in [(0x7bff, "65504"), (0x0001, "2^-24"), (0x8000, "-0"), (0xfbff, "-65504")] {
        assert!(matches!(outcome(&with(bits), what), Outcome::Ran), "{what}");
    }
    let non_finite = [
        (0x7c00, "+inf"),
        (0xfc00, "-inf"),
        (0x7e00, "a quiet NaN"),
        (0x7c01, "a signalling NaN"),
        (0xfe00, "a negative NaN"),
        (0xffff, "a NaN of all ones"),
    ];
    for (bits, what) in non_finite {
        assert_rejected(&with(bits), what, &["tensor 1: f16 constant value 5 is not a finite number"]);
    }
    // 65520 rounds to infinity in f16: the writer stores it, the loader
    // refuses it.
    let b = float_conv(1, |w| {
        let wt = w.float_constant("w", DType::F16, &dims, &vec![65520.0; n]);
        vec![wt, w.constant_f32("b", &[0.5; 16]), TensorId::ABSENT]
    });
    assert_rejected(&b, "f16 weights of 65520", &["tensor 1: f16 constant value 0 is not a finite number"]);

    // f16 activations: as a graph input, and as an operator's output.
    let unary = [Unary::Abs as i32, 0, 0];
    let b = float_model(OpKind::FloatUnary, &[(DType::F16, &[2, 8])], |_| vec![], (DType::F32, &[2, 8]), &unary);
    assert_rejected(&b, "an f16 graph input", &["tensor 0: f16 tensors are weights and must be constants"]);
    let b = float_model(OpKind::FloatUnary, &[(DType::F32, &[2, 8])], |_| vec![], (DType::F16, &[2, 8]), &unary);
    assert_rejected(&b, "an f16 output", &["tensor 1: f16 tensors are weights and must be constants"]);
    // An f16 constant where only weights may be f16: a bias, and the
    // operand of an elementwise function.
    let b = float_conv(1, |w| {
        let mut t = float_affine(w, DType::F16, &dims, 16, None);
        t[1] = w.float_constant("b.f16", DType::F16, &[16], &[0.5; 16]);
        t
    });
    assert_rejected(&b, "an f16 bias", &["operator 0 (FloatConv2d): input 2 is F16, F32 expected"]);
    let b = float_model(
        OpKind::FloatBinary,
        &[(DType::F32, &[2, 8])],
        |w| vec![w.float_constant("k", DType::F16, &[8], &[1.0; 8])],
        (DType::F32, &[2, 8]),
        &[Binary::Mul as i32],
    );
    assert_rejected(&b, "an f16 operand", &["operator 0 (FloatBinary): input 1 is F16, F32 expected"]);
}

#[test]
fn float_convolution_weights_are_f16_or_f32_constants_that_fit() {
    let op = "operator 0 (FloatConv2d)";
    let dims = [3, 3, 8, 16];
    for dtype in [DType::F16, DType::F32] {
        for slope in [None, Some(16)] {
            let b = float_conv(1, |w| float_affine(w, dtype, &dims, 16, slope));
            assert!(matches!(outcome(&b, "valid weights"), Outcome::Ran), "{dtype:?} weights, slopes {slope:?}");
        }
    }
    // Two groups of 4 channels, and depthwise with a channel multiplier of 2.
    for (groups, dims) in [(2, [3, 3, 4, 16]), (8, [3, 3, 1, 16])] {
        let b = float_conv(groups, |w| float_affine(w, DType::F16, &dims, 16, None));
        assert!(matches!(outcome(&b, "grouped"), Outcome::Ran), "{groups} groups, weights {dims:?}");
    }

    // Weights of an int8 type.
    let b = float_conv(1, |w| {
        let wt = w.constant_i8("w", &dims, 0.5, &[1; 3 * 3 * 8 * 16]);
        vec![wt, w.constant_f32("b", &[0.5; 16]), TensorId::ABSENT]
    });
    assert_rejected(&b, "int8 weights", &[op, "weights must be an f16 or f32 constant, found I8"]);
    let b = float_conv(1, |w| {
        let wt = w.conv_weights("w", [16, 3, 3, 8], 1, 0.5, &[1; 3 * 3 * 8 * 16]);
        vec![wt, w.constant_f32("b", &[0.5; 16]), TensorId::ABSENT]
    });
    assert_rejected(&b, "packed int8 weights", &[op, "weights must be an f16 or f32 constant, found Packed"]);
    // Weights that are an activation (a second graph input) rather than a
    // constant in the file.
    let b = float_model(
        OpKind::FloatConv2d,
        &[(DType::F32, &[1, 4, 4, 8]), (DType::F32, &dims)],
        |w| vec![w.constant_f32("b", &[0.5; 16]), TensorId::ABSENT],
        (DType::F32, &[1, 4, 4, 16]),
        &float_conv_params(1, Bounds::NONE).words(),
    );
    assert_rejected(&b, "activation weights", &[op, "weights must be an f16 or f32 constant"]);

    // Weight shapes that do not fit the groups and channels: (groups,
    // weights, what the message says).
    type Case<'a> = (usize, &'a [usize], &'a str);
    let cases: [Case; 7] = [
        (1, &[3, 3, 3, 16], "8 input and 16 output channels, weights for 3 per group, 1 groups do not fit"),
        (2, &[3, 3, 8, 16], "8 input and 16 output channels, weights for 8 per group, 2 groups do not fit"),
        (3, &[3, 3, 2, 15], "8 input and 15 output channels, weights for 2 per group, 3 groups do not fit"),
        (16, &[3, 3, 1, 16], "8 input and 16 output channels, weights for 1 per group, 16 groups do not fit"),
        (1, &[3, 3, 8, 15], "output has shape [1, 4, 4, 16], [1, 4, 4, 15] expected"),
        (1, &[9, 8, 16], "weights has rank 3, 4 expected"),
        (1, &[7, 7, 8, 16], "the 7x7 kernel does not fit the padded 4x4 input"),
    ];
    for (groups, dims, needle) in cases {
        let o = *dims.last().unwrap();
        let b = float_conv(groups, |w| float_affine(w, DType::F32, dims, o, None));
        assert_rejected(&b, &format!("{groups} groups, weights {dims:?}"), &[op, needle]);
    }
}

#[test]
fn float_biases_and_slopes_have_one_value_per_output_channel() {
    let op = "operator 0 (FloatConv2d)";
    let dims = [3, 3, 8, 16];
    // What is wrong, the bias and slope lengths, what the message says.
    type Case<'a> = (&'a str, usize, Option<usize>, &'a str);
    let cases: [Case; 4] = [
        ("a bias of 17", 17, None, "input 2 has shape [17], [16] expected"),
        ("a bias of 15", 15, Some(16), "input 2 has shape [15], [16] expected"),
        ("slopes of 15", 16, Some(15), "input 3 has shape [15], [16] expected"),
        ("slopes of 1", 16, Some(1), "input 3 has shape [1], [16] expected"),
    ];
    for (what, bias, slope, needle) in cases {
        let b = float_conv(1, |w| float_affine(w, DType::F16, &dims, bias, slope));
        assert_rejected(&b, what, &[op, needle]);
    }
    // A bias of rank 2, of i32, in the arena, and none at all.
    let b = float_conv(1, |w| {
        let mut t = float_affine(w, DType::F16, &dims, 16, None);
        t[1] = w.constant("b2", DType::F32, &[1, 16], Quant::IDENTITY, &[0; 64]);
        t
    });
    assert_rejected(&b, "a bias of rank 2", &[op, "input 2 has shape [1, 16], [16] expected"]);
    let b = float_conv(1, |w| {
        let mut t = float_affine(w, DType::F16, &dims, 16, None);
        t[1] = w.constant_i32("b.i32", &[1; 16]);
        t
    });
    assert_rejected(&b, "an i32 bias", &[op, "input 2 is I32, F32 expected"]);
    let b = float_conv(1, |w| {
        let mut t = float_affine(w, DType::F16, &dims, 16, None);
        t[1] = w.activation("b.arena", DType::F32, &[16], Quant::IDENTITY);
        t
    });
    assert_rejected(&b, "a bias in the arena", &[op, "input 2 must be a constant in the file"]);
    let b = float_conv(1, |w| {
        let mut t = float_affine(w, DType::F16, &dims, 16, None);
        t[1] = TensorId::ABSENT;
        t
    });
    assert_rejected(&b, "no bias", &[op, "input 2 is tensor 4294967295"]);

    // The same for a fully connected layer: [2,8] by weights [8,20].
    let fc = |bias: usize, slope: Option<usize>| {
        let f = |w: &mut ModelWriter| float_affine(w, DType::F16, &[8, 20], bias, slope);
        float_model(
            OpKind::FloatFullyConnected,
            &[(DType::F32, &[2, 8])],
            f,
            (DType::F32, &[2, 20]),
            &Bounds::NONE.words(),
        )
    };
    assert!(matches!(outcome(&fc(20, Some(20)), "valid fully connected"), Outcome::Ran));
    let op = "operator 0 (FloatFullyConnected)";
    assert_rejected(&fc(21, None), "fc bias of 21", &[op, "input 2 has shape [21], [20] expected"]);
    assert_rejected(&fc(20, Some(8)), "fc slopes of 8", &[op, "input 3 has shape [8], [20] expected"]);
}

#[test]
fn float_fully_connected_shapes_are_checked() {
    let op = "operator 0 (FloatFullyConnected)";
    let fc = |x: &[usize], weights: &[usize], y: &[usize]| {
        let o = *weights.last().unwrap();
        let f = |w: &mut ModelWriter| float_affine(w, DType::F32, weights, o, None);
        float_model(OpKind::FloatFullyConnected, &[(DType::F32, x)], f, (DType::F32, y), &Bounds::NONE.words())
    };
    assert!(matches!(outcome(&fc(&[3, 8], &[8, 5], &[3, 5]), "valid"), Outcome::Ran));
    assert_rejected(&fc(&[3, 8], &[9, 5], &[3, 5]), "weights for 9", &[op, "input has 8 features, weights expect 9"]);
    assert_rejected(&fc(&[3, 8], &[8, 5], &[3, 4]), "4 outputs", &[op, "output has shape [3, 4], [3, 5] expected"]);
    assert_rejected(&fc(&[1, 1, 3, 8], &[8, 5], &[3, 5]), "rank 4 input", &[op, "input has rank 4, 2 expected"]);
    assert_rejected(&fc(&[3, 8], &[1, 8, 5], &[3, 5]), "rank 3 weights", &[op, "weights has rank 3, 2 expected"]);
}

#[test]
fn float_bounds_are_intervals() {
    let dims = [3, 3, 8, 16];
    let conv = |lo: f32, hi: f32| {
        let p = FloatConv2d { bounds: Bounds { lo, hi }, ..float_conv_params(1, Bounds::NONE) };
        float_model(
            OpKind::FloatConv2d,
            &[(DType::F32, &[1, 4, 4, 8])],
            |w| float_affine(w, DType::F16, &dims, 16, None),
            (DType::F32, &[1, 4, 4, 16]),
            &p.words(),
        )
    };
    // Relu, Relu6, a single point, and zero to negative zero.
    for (lo, hi) in [(0.0, f32::INFINITY), (0.0, 6.0), (1.5, 1.5), (0.0, -0.0)] {
        assert!(matches!(outcome(&conv(lo, hi), "valid bounds"), Outcome::Ran), "bounds {lo}..={hi}");
    }
    type Case<'a> = (f32, f32, &'a str);
    let cases: [Case; 5] = [
        (f32::NAN, 6.0, "bounds NaN..=6 are not an interval"),
        (0.0, f32::NAN, "bounds 0..=NaN are not an interval"),
        (f32::NAN, f32::NAN, "bounds NaN..=NaN are not an interval"),
        (6.0, 0.0, "bounds 6..=0 are not an interval"),
        (f32::INFINITY, f32::NEG_INFINITY, "bounds inf..=-inf are not an interval"),
    ];
    for (lo, hi, needle) in cases {
        assert_rejected(&conv(lo, hi), &format!("conv bounds {lo}..={hi}"), &["operator 0", needle]);
    }
    let b = float_model(
        OpKind::FloatFullyConnected,
        &[(DType::F32, &[2, 8])],
        |w| float_affine(w, DType::F32, &[8, 20], 20, None),
        (DType::F32, &[2, 20]),
        &Bounds { lo: 1.0, hi: f32::NAN }.words(),
    );
    assert_rejected(&b, "fully connected bounds 1..=NaN", &["operator 0: bounds 1..=NaN are not an interval"]);
    // A NaN hidden in another bit pattern: a negative NaN with a payload.
    let mut words = float_conv_params(1, Bounds::NONE).words();
    words[9] = 0xffc0_0001_u32 as i32;
    let b = float_model(
        OpKind::FloatConv2d,
        &[(DType::F32, &[1, 4, 4, 8])],
        |w| float_affine(w, DType::F16, &dims, 16, None),
        (DType::F32, &[1, 4, 4, 16]),
        &words,
    );
    assert_rejected(&b, "a negative NaN lower bound", &["operator 0: bounds NaN..=inf are not an interval"]);
    let b = float_model(
        OpKind::FloatConv2d,
        &[(DType::F32, &[1, 4, 4, 8])],
        |w| float_affine(w, DType::F16, &dims, 16, None),
        (DType::F32, &[1, 4, 4, 16]),
        &words[..10],
    );
    assert_rejected(&b, "no upper bound", &["operator 0 (FloatConv2d) has 10 parameters, 11 expected"]);
}

#[test]
fn float_binary_inputs_broadcast_and_functions_are_known() {
    let op = "operator 0 (FloatBinary)";
    let binary = |a: &[usize], b: &[usize], y: &[usize], params: &[i32]| {
        float_model(OpKind::FloatBinary, &[(DType::F32, a), (DType::F32, b)], |_| vec![], (DType::F32, y), params)
    };
    for f in [Binary::Add, Binary::Sub, Binary::Mul, Binary::Div, Binary::Max, Binary::Min, Binary::Pow] {
        let b = binary(&[1, 2, 2, 3], &[3], &[1, 2, 2, 3], &[f as i32]);
        assert!(matches!(outcome(&b, "valid"), Outcome::Ran), "{f:?} of [1, 2, 2, 3] and [3]");
    }
    let b = binary(&[], &[2, 1, 3], &[2, 4, 3], &[Binary::Add as i32]);
    assert!(matches!(outcome(&b, "a scalar and a broadcast"), Outcome::Ran));

    type Case<'a> = (&'a [usize], &'a [usize], &'a [usize], &'a str);
    let cases: [Case; 4] = [
        (
            &[1, 2, 2, 3],
            &[1, 1, 1, 2],
            &[1, 2, 2, 3],
            "input 1 of shape [1, 1, 1, 2] does not broadcast to the output's [1, 2, 2, 3]",
        ),
        (&[2, 3], &[3], &[3], "input 0 of shape [2, 3] does not broadcast to the output's [3]"),
        (&[1, 2, 2, 3], &[1, 2, 2, 3], &[1, 2, 2, 1], "input 0 of shape [1, 2, 2, 3] does not broadcast"),
        (&[4, 3], &[2, 3], &[4, 3], "input 1 of shape [2, 3] does not broadcast to the output's [4, 3]"),
    ];
    for (a, b, y, needle) in cases {
        let file = binary(a, b, y, &[Binary::Add as i32]);
        assert_rejected(&file, &format!("{a:?} and {b:?} to {y:?}"), &[op, needle]);
    }
    for code in [7, -1, i32::MAX, i32::MIN] {
        let b = binary(&[2, 3], &[2, 3], &[2, 3], &[code]);
        assert_rejected(&b, &format!("function {code}"), &[&format!("operator 0: unknown binary function {code}")]);
    }
    assert_rejected(&binary(&[2, 3], &[2, 3], &[2, 3], &[]), "no function", &[op, "0 parameters, 1 expected"]);
    let b = float_model(OpKind::FloatBinary, &[(DType::F32, &[2, 3])], |_| vec![], (DType::F32, &[2, 3]), &[0]);
    assert_rejected(&b, "one input", &[op, "1 inputs and 1 outputs, 2 to 2 inputs and 1 output expected"]);
}

#[test]
fn float_unary_functions_and_parameters_are_checked() {
    let op = "operator 0 (FloatUnary)";
    let unary = |params: &[i32]| {
        float_model(OpKind::FloatUnary, &[(DType::F32, &[2, 5])], |_| vec![], (DType::F32, &[2, 5]), params)
    };
    for code in 0..=12 {
        let (a, b) = match code {
            0 => (-1.0, 1.0),
            4 => (0.2, 0.5),
            _ => (0.0, 0.0),
        };
        assert!(matches!(outcome(&unary(&[code, bits(a), bits(b)]), "valid"), Outcome::Ran), "function {code}");
    }
    // A clamp to the whole line, and to one point.
    let clamp = Unary::Clamp as i32;
    for (lo, hi) in [(f32::NEG_INFINITY, f32::INFINITY), (2.0, 2.0)] {
        assert!(matches!(outcome(&unary(&[clamp, bits(lo), bits(hi)]), "clamp"), Outcome::Ran), "{lo}..={hi}");
    }

    for code in [14, 255, -1, i32::MIN] {
        let b = unary(&[code, 0, 0]);
        assert_rejected(&b, &format!("function {code}"), &[&format!("operator 0: unknown unary function {code}")]);
    }
    // Parameters of functions other than Clamp must be finite (both, even
    // where the function uses none).
    let (sigmoid, hard) = (Unary::Sigmoid as i32, Unary::HardSigmoid as i32);
    type Case<'a> = ([i32; 3], &'a str);
    let cases: [Case; 4] = [
        ([sigmoid, bits(f32::NAN), 0], "parameters NaN and 0 must be finite"),
        ([hard, bits(0.2), bits(f32::INFINITY)], "parameters 0.2 and inf must be finite"),
        ([hard, bits(f32::NEG_INFINITY), bits(0.5)], "parameters -inf and 0.5 must be finite"),
        ([Unary::Gelu as i32, 0, 0x7f80_0001], "parameters 0 and NaN must be finite"),
    ];
    for (params, needle) in cases {
        assert_rejected(&unary(&params), needle, &[op, needle]);
    }
    // A Clamp's parameters are bounds: an interval, no NaN.
    let cases: [Case; 4] = [
        ([clamp, bits(2.0), bits(1.0)], "bounds 2..=1 are not an interval"),
        ([clamp, bits(f32::NAN), bits(1.0)], "bounds NaN..=1 are not an interval"),
        ([clamp, bits(-1.0), bits(f32::NAN)], "bounds -1..=NaN are not an interval"),
        ([clamp, bits(f32::INFINITY), bits(f32::NEG_INFINITY)], "bounds inf..=-inf are not an interval"),
    ];
    for (params, needle) in cases {
        assert_rejected(&unary(&params), needle, &["operator 0", needle]);
    }
    assert_rejected(&unary(&[clamp, 0]), "two parameters", &[op, "2 parameters, 3 expected"]);
    let b = float_model(OpKind::FloatUnary, &[(DType::F32, &[2, 5])], |_| vec![], (DType::F32, &[5, 2]), &[5, 0, 0]);
    assert_rejected(&b, "a new shape", &[op, "shapes [2, 5] and [5, 2] differ"]);
}

#[test]
fn float_matrix_products_need_matching_operands() {
    let op = "operator 0 (FloatMatMul)";
    let matmul = |a: &[usize], b: &[usize], y: &[usize]| {
        float_model(OpKind::FloatMatMul, &[(DType::F32, a), (DType::F32, b)], |_| vec![], (DType::F32, y), &[])
    };
    type Case<'a> = (&'a [usize], &'a [usize], &'a [usize]);
    let valid: [Case; 3] = [
        (&[2, 3], &[3, 4], &[2, 4]),
        (&[2, 2, 3], &[2, 3, 4], &[2, 2, 4]),
        (&[1, 2, 2, 3], &[1, 2, 3, 5], &[1, 2, 2, 5]),
    ];
    for (a, b, y) in valid {
        assert!(matches!(outcome(&matmul(a, b, y), "valid"), Outcome::Ran), "{a:?} times {b:?}");
    }
    assert_rejected(
        &matmul(&[2, 3], &[4, 5], &[2, 5]),
        "inner sizes",
        &[op, "[2, 3] times [4, 5]: inner sizes differ"],
    );
    let b = matmul(&[2, 2, 3, 4], &[2, 2, 3, 4], &[2, 2, 3, 4]);
    assert_rejected(&b, "square operands", &[op, "[2, 2, 3, 4] times [2, 2, 3, 4]: inner sizes differ"]);
    let leading = "ranks 2 to 4, equal, with the same leading dimensions expected";
    let cases: [Case; 5] = [
        (&[2, 3, 4], &[3, 4, 5], &[2, 3, 5]),
        (&[1, 3, 4], &[2, 4, 5], &[2, 3, 5]),
        (&[3, 4], &[2, 4, 5], &[2, 3, 5]),
        (&[2, 1, 3, 4], &[2, 2, 4, 5], &[2, 2, 3, 5]),
        (&[4], &[4], &[1]),
    ];
    for (a, b, y) in cases {
        let needle = format!("operands {a:?} and {b:?}: {leading}");
        assert_rejected(&matmul(a, b, y), &format!("{a:?} times {b:?}"), &[op, &needle]);
    }
    assert_rejected(
        &matmul(&[2, 3], &[3, 4], &[2, 5]),
        "wrong output",
        &[op, "output has shape [2, 5], [2, 4] expected"],
    );
    let b = float_model(
        OpKind::FloatMatMul,
        &[(DType::F32, &[2, 3]), (DType::F32, &[3, 4])],
        |_| vec![],
        (DType::F32, &[2, 4]),
        &[0],
    );
    assert_rejected(&b, "a parameter", &[op, "1 parameters, 0 expected"]);
}

#[test]
fn float_operators_read_and_write_f32_activations() {
    use DType::{F32, I8};
    let (x, x4, w2) = (&[2, 8][..], &[1, 4, 4, 8][..], &[8, 20][..]);
    let conv = float_conv_params(1, Bounds::NONE).words();
    let conv_affine = |w: &mut ModelWriter| float_affine(w, F32, &[3, 3, 8, 16], 16, None);
    let fc_affine = |w: &mut ModelWriter| float_affine(w, F32, &[8, 20], 20, None);
    let unary = [Unary::Neg as i32, 0, 0];
    let none = |_: &mut ModelWriter| vec![];
    // Each case: the model, what the message says.
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            float_model(OpKind::FloatUnary, &[(I8, x)], none, (F32, x), &unary),
            "(FloatUnary): input 0 is I8, F32 expected",
        ),
        (
            float_model(OpKind::FloatUnary, &[(F32, x)], none, (I8, x), &unary),
            "(FloatUnary): output is I8, F32 expected",
        ),
        (
            float_model(OpKind::FloatSoftmax, &[(I8, x)], none, (F32, x), &[]),
            "(FloatSoftmax): input 0 is I8, F32 expected",
        ),
        (
            float_model(OpKind::FloatReduce, &[(I8, x)], none, (F32, &[2, 1]), &[1]),
            "(FloatReduce): input 0 is I8, F32 expected",
        ),
        (
            float_model(OpKind::FloatReduce, &[(F32, x)], none, (I8, &[2, 1]), &[0]),
            "(FloatReduce): output is I8, F32 expected",
        ),
        (
            float_model(OpKind::FloatBinary, &[(F32, x), (I8, x)], none, (F32, x), &[0]),
            "(FloatBinary): input 1 is I8, F32 expected",
        ),
        (
            float_model(OpKind::FloatMatMul, &[(F32, x), (I8, w2)], none, (F32, &[2, 20]), &[]),
            "(FloatMatMul): input 1 is I8, F32 expected",
        ),
        (
            float_model(OpKind::FloatConv2d, &[(I8, x4)], conv_affine, (F32, &[1, 4, 4, 16]), &conv),
            "(FloatConv2d): input 0 is I8, F32 expected",
        ),
        (
            float_model(OpKind::FloatConv2d, &[(F32, x4)], conv_affine, (I8, &[1, 4, 4, 16]), &conv),
            "(FloatConv2d): output is I8, F32 expected",
        ),
        (
            float_model(OpKind::FloatFullyConnected, &[(I8, x)], fc_affine, (F32, &[2, 20]), &Bounds::NONE.words()),
            "(FloatFullyConnected): input 0 is I8, F32 expected",
        ),
        // And the other way round: int8 operators do not read f32, and
        // operators that move elements keep their dtype.
        (
            float_model(OpKind::Add, &[(F32, x), (I8, x)], none, (I8, x), &Act::NONE.words()),
            "(Add): input 0 is F32, I8 expected",
        ),
        (float_model(OpKind::Reshape, &[(F32, x)], none, (I8, &[16]), &[]), "(Reshape): output is I8, F32 expected"),
        (
            float_model(OpKind::Dequantize, &[(F32, x)], none, (F32, x), &[]),
            "(Dequantize): input 0 is F32, I8 expected",
        ),
    ];
    for (b, needle) in cases {
        assert_rejected(&b, needle, &["operator 0 ", needle]);
    }
}

#[test]
fn concatenations_do_not_mix_int8_and_f32() {
    use DType::{F32, I8};
    let concat = |inputs: &[DType], y: DType| {
        let xs: Vec<(DType, &[usize])> = inputs.iter().map(|&d| (d, &[1, 2, 2, 3][..])).collect();
        let y_dims = [1, 2, 2, 3 * inputs.len()];
        float_model(OpKind::Concat, &xs, |_| vec![], (y, &y_dims), &[3])
    };
    assert!(matches!(outcome(&concat(&[F32, F32, F32], F32), "f32"), Outcome::Ran));
    assert!(matches!(outcome(&concat(&[I8, I8], I8), "int8"), Outcome::Ran));
    let op = "operator 0 (Concat)";
    type Case<'a> = (&'a [DType], DType, &'a str);
    let cases: [Case; 5] = [
        (&[I8, F32], I8, "input 1 is F32, I8 expected"),
        (&[F32, I8], F32, "input 1 is I8, F32 expected"),
        (&[F32, F32, I8], F32, "input 2 is I8, F32 expected"),
        (&[F32, F32], I8, "output is I8, F32 expected"),
        (&[I8, I8], F32, "output is F32, I8 expected"),
    ];
    for (inputs, y, needle) in cases {
        assert_rejected(&concat(inputs, y), &format!("{inputs:?} to {y:?}"), &[op, needle]);
    }
    // An f16 constant among f32 inputs.
    let b = float_model(
        OpKind::Concat,
        &[(F32, &[1, 2, 2, 3])],
        |w| vec![w.float_constant("k", DType::F16, &[1, 2, 2, 3], &[1.0; 12])],
        (F32, &[1, 2, 2, 6]),
        &[3],
    );
    assert_rejected(&b, "an f16 constant", &[op, "input 1 is F16, F32 expected"]);
}

#[test]
fn every_byte_flip_of_the_float_island_outside_its_weights_is_rejected_or_runs() {
    let file = support::float_island(11);
    assert!(matches!(outcome(&file, "float_island"), Outcome::Ran));
    // The writer lays the weights out last: everything before them is
    // header, section table, strings, tensor table, graph and operators.
    let weights = section(&file, format::section::WEIGHTS).1;
    let ops = section(&file, format::section::OPS);
    let (mut ran, mut rejected, mut ran_in_ops) = (0, 0, 0);
    for at in 0..weights {
        for mask in [0xFF, 0x01, 0x80] {
            let b = mutated(&file, |b| b[at] ^= mask);
            match outcome(&b, &format!("float island byte {at} ^ {mask:#04x}, resealed")) {
                Outcome::Ran => {
                    ran += 1;
                    ran_in_ops += usize::from((ops.1..ops.1 + ops.2).contains(&at));
                }
                Outcome::Rejected(msg) => {
                    rejected += 1;
                    assert!(!msg.contains("checksum"), "byte {at} ^ {mask:#04x}: resealed, yet {msg:?}");
                }
            }
        }
    }
    println!("{weights} bytes x 3 masks: {ran} flipped float islands still load and run ({ran_in_ops} in the operators), {rejected} are rejected");
    // Bounds, unary functions and slice starts are operator words that
    // can change and still make a valid model: those paths ran too.
    assert!(rejected > ran && ran_in_ops > 0, "{ran} ran ({ran_in_ops} in the operators), {rejected} rejected");
}
