//! Bad inputs give errors that say what is wrong and where: an unsupported
//! op names its op type and node, a bad file or folder names its path.

mod common;

use std::path::PathBuf;

use common::onnx::{self, node, tensor_info};
use kiln_converter::calibrate::Method;
use kiln_converter::input::{self, ImageOptions};

/// A scratch folder of its own for each test.
fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// x → Relu → y → `op` (node `fancy_node`) → z, written to a file.
fn tiny_model(dir: &std::path::Path, op: &str) -> PathBuf {
    let nodes = vec![node("Relu", "relu_node", &["x"], &["y"], vec![]), node(op, "fancy_node", &["y"], &["z"], vec![])];
    onnx::write(dir, op, 13, nodes, vec![], tensor_info("x", &[1, 3, 4, 4]), vec![tensor_info("z", &[1, 3, 4, 4])])
}

/// The whole error chain, as a user sees it; printed for the test log.
fn message(err: anyhow::Error) -> String {
    let msg = format!("{err:#}");
    eprintln!("error: {msg}");
    msg
}

#[test]
fn unsupported_op_names_op_and_node() {
    let dir = scratch("unsupported_op");
    let err = kiln_converter::load_ir(&tiny_model(&dir, "Round")).err().expect("must fail");
    let msg = message(err);
    assert!(msg.contains("ONNX node `fancy_node` (Round): unsupported ONNX op `Round`"), "{msg}");
    // An op that tract cannot even read is named too.
    let msg = message(kiln_converter::load_ir(&tiny_model(&dir, "GridSample")).err().expect("must fail"));
    assert!(msg.contains("fancy_node") && msg.contains("GridSample"), "{msg}");
    // The same model with a supported op converts.
    let (_, graph) = kiln_converter::load_ir(&tiny_model(&dir, "Sigmoid")).unwrap();
    assert_eq!(graph.nodes.len(), 2);
}

#[test]
fn a_file_that_is_not_onnx() {
    let dir = scratch("not_onnx");
    let path = dir.join("model.onnx");
    std::fs::write(&path, "this is a text file, not a model\n").unwrap();
    let msg = message(kiln_converter::load_ir(&path).err().expect("must fail"));
    assert!(msg.contains(&path.display().to_string()) && msg.contains("not"), "{msg}");
    let missing = dir.join("missing.onnx");
    let msg = message(kiln_converter::load_ir(&missing).err().expect("must fail"));
    assert!(msg.contains("does not exist") && msg.contains("missing.onnx"), "{msg}");
}

#[test]
fn calibration_folder_errors_name_the_path() {
    let dir = scratch("calibration");
    let shape = [1, 3, 112, 112];
    let options = ImageOptions::default();
    let msg = message(input::load_dir(&dir, &shape, &options).err().expect("empty folder"));
    assert!(msg.contains("holds no") && msg.contains(&dir.display().to_string()), "{msg}");
    let missing = dir.join("nowhere");
    let msg = message(input::load_dir(&missing, &shape, &options).err().expect("missing folder"));
    assert!(msg.contains("does not exist") && msg.contains("nowhere"), "{msg}");
    std::fs::write(dir.join("broken.png"), b"not a png at all").unwrap();
    let msg = message(input::load_dir(&dir, &shape, &options).err().expect("broken image"));
    assert!(msg.contains("cannot read image") && msg.contains("broken.png"), "{msg}");
}

#[test]
fn images_are_resized_rgb_and_scaled() {
    let dir = scratch("images");
    let img = image::RgbImage::from_fn(8, 6, |x, _| image::Rgb([10, 20, if x < 4 { 30 } else { 50 }]));
    img.save(dir.join("a.png")).unwrap();
    let raw = input::load_dir(&dir, &[1, 3, 6, 8], &ImageOptions::default()).unwrap();
    assert_eq!(raw.len(), 1);
    let v = &raw[0].values;
    assert_eq!((v[0], v[48], v[96], v[96 + 7]), (10.0, 20.0, 30.0, 50.0));
    let bgr = ImageOptions { bgr: true, mean: [1.0, 2.0, 3.0], scale: 0.5, letterbox: false };
    let v = &input::load_dir(&dir, &[1, 3, 6, 8], &bgr).unwrap()[0].values;
    assert_eq!((v[0], v[48], v[96]), ((30.0 - 1.0) * 0.5, (20.0 - 2.0) * 0.5, (10.0 - 3.0) * 0.5));
    let small = input::load_dir(&dir, &[1, 3, 3, 4], &ImageOptions::default()).unwrap();
    assert_eq!(small[0].values.len(), 36);
    assert_eq!(small[0].values[0], 10.0);
    // Letterboxed into a square: scaled 2x to 16x12, the 4 rows below zero.
    let boxed = ImageOptions { letterbox: true, ..ImageOptions::default() };
    let v = &input::load_dir(&dir, &[1, 3, 16, 16], &boxed).unwrap()[0].values;
    assert_eq!((v[0], v[256], v[512], v[512 + 15]), (10.0, 20.0, 30.0, 50.0));
    assert!(v[12 * 16..16 * 16].iter().all(|&x| x == 0.0));
}

#[test]
fn a_model_too_large_for_memory_fails_before_calibrating() {
    // 1x3x200000x200000: 480 GB a tensor in float, in a file of a few
    // hundred bytes; refused before any image is read or tract runs.
    let dir = scratch("too_large");
    let dims = [1, 3, 200_000, 200_000];
    let nodes = vec![node("Relu", "relu", &["x"], &["y"], vec![]), node("Sigmoid", "sigmoid", &["y"], &["z"], vec![])];
    let path = onnx::write(&dir, "huge", 13, nodes, vec![], tensor_info("x", &dims), vec![tensor_info("z", &dims)]);
    let options = ImageOptions::default();
    let started = std::time::Instant::now();
    let result = kiln_converter::convert(&path, &common::calibration_faces(), &options, Method::Mse, |_, _| {});
    let msg = message(result.expect_err("no machine here holds 1.4 TB of activations"));
    assert!(msg.contains("at input shape [1, 3, 200000, 200000], 8 calibration inputs"), "{msg}");
    assert!(msg.contains("bytes of memory available: give a smaller --input-shape"), "{msg}");
    eprintln!("refused in {:?}", started.elapsed());
}

#[test]
fn non_finite_numbers_are_refused_where_they_enter() {
    let dir = scratch("non_finite");
    let shape = [1, 3, 4, 4];
    let model = tiny_model(&dir, "Sigmoid");
    let calib = dir.join("calib");
    std::fs::create_dir_all(&calib).unwrap();
    let convert = |options: &ImageOptions| kiln_converter::convert(&model, &calib, options, Method::Mse, |_, _| {});

    // A calibration tensor with one NaN: named, with its index.
    let mut values = vec![0.5f32; 48];
    values[5] = f32::NAN;
    std::fs::write(calib.join("a.npy"), input::encode_npy(&shape, &values)).unwrap();
    let msg = message(convert(&ImageOptions::default()).expect_err("a NaN input"));
    assert!(msg.contains("a.npy is not a usable .npy file: value 5 is NaN"), "{msg}");
    // Finite values whose span overflows f32.
    values[5] = 3e38;
    values[6] = -3e38;
    std::fs::write(calib.join("a.npy"), input::encode_npy(&shape, &values)).unwrap();
    let msg = message(convert(&ImageOptions::default()).expect_err("a span past f32"));
    assert!(msg.contains("the calibration inputs span -300000000000000000000000000000000000000 to"), "{msg}");

    // Normalisations that make every input alike.
    std::fs::write(calib.join("a.npy"), input::encode_npy(&shape, &[0.5; 48])).unwrap();
    for (options, words) in [
        (ImageOptions { mean: [f32::NAN; 3], ..ImageOptions::default() }, "--mean NaN is not a finite number"),
        (ImageOptions { mean: [0.0, f32::INFINITY, 0.0], ..ImageOptions::default() }, "--mean inf is not"),
        (
            ImageOptions { scale: 1e-45, ..ImageOptions::default() },
            "--scale 0.000000000000000000000000000000000000000000001 must be a finite number at least 1e-8",
        ),
        (ImageOptions { scale: f32::INFINITY, ..ImageOptions::default() }, "--scale inf must be"),
    ] {
        let msg = message(convert(&options).expect_err(words));
        assert!(msg.contains(words), "{msg}");
    }
    kiln_converter::convert(&model, &calib, &ImageOptions::default(), Method::Mse, |_, _| {}).expect("finite inputs");

    // A NaN weight: named with its node and index, before calibration.
    let nodes = vec![node("Mul", "scale_node", &["x", "w"], &["y"], vec![])];
    let w = onnx::floats("w", &[1, 3, 1, 1], &[1.0, f32::NAN, 2.0]);
    let damaged = onnx::write(
        &dir,
        "damaged",
        13,
        nodes,
        vec![w],
        tensor_info("x", &[1, 3, 4, 4]),
        vec![tensor_info("y", &[1, 3, 4, 4])],
    );
    let msg = message(kiln_converter::load_ir(&damaged).err().expect("a NaN weight"));
    assert!(msg.contains("ONNX node `scale_node`: scale 1 is NaN; kiln needs finite weights"), "{msg}");
}
