//! Golden outputs across platforms: a model's int8 outputs must be the same
//! bytes on every target (x86_64, aarch64, ...) and at every ISA level
//! (scalar, NEON, dotprod, AVX2, VNNI, ...), because the requantization is
//! exact IEEE and integer arithmetic (see DESIGN.md) and the scalar kernels
//! are the specification. The golden files in `tests/data/golden/` were made
//! once, with the scalar kernels; every platform compares against the same
//! files, at every kernel level its CPU supports (`Auto` and each of
//! `Isa::ALL`), whatever `KILN_ISA` says.
//!
//! A deliberate change of the arithmetic changes the goldens. Regenerate them
//! on any one machine, check on the others (e.g. under qemu, see
//! `targets/README.md`), and say why in the commit:
//!
//! ```sh
//! KILN_BLESS=1 cargo test -p kiln-runtime --test golden
//! ```
//!
//! A golden file is text: a `model` line with the CRC-32 of the model file,
//! then one line per run and graph output, `run <n> <output name> <hex bytes>`.
//!
//! Real models are not committed, and their converted bytes depend on the
//! float reference's arithmetic on the converting CPU, so their goldens are
//! made in the same CI run instead: `KILN_GOLDEN_DIR` names a folder of
//! `.kiln` files (targets/ci converts SFace into it on the host), each with
//! its golden `<stem>.txt` beside it. A model there without one gets it,
//! made with the scalar kernels (targets/ci does so on the host), and then
//! every level of every target is checked against it. Their runs are a real
//! face crop when the model takes 112x112 RGB, plus pseudo-random pixels.

mod support;

use core::fmt::Write as _;
use std::path::PathBuf;

use kiln_runtime::format::{checksum, AlignedBytes};
use kiln_runtime::{DType, Isa, Model, Session, SessionOptions};

/// One model, the inputs to run it on, and its golden file.
struct Case {
    /// Names the case in messages.
    name: String,
    /// Its golden file.
    golden: PathBuf,
    /// Whether the golden file is in the repository (else it is made on
    /// the first run that lacks it: see the module doc).
    committed: bool,
    /// The `.kiln` file's bytes (generated, or read from disk).
    model: Vec<u8>,
    /// One entry per run: the real values of every graph input, in order.
    runs: Vec<Vec<Vec<f32>>>,
}

/// The cases: a generated model, and the real models of `KILN_GOLDEN_DIR`.
fn cases() -> Vec<Case> {
    let small = support::small_net_tapped(7);
    let runs = pixel_runs(&input_dims(&small), &[1, 2, 3]);
    let name = "small_net_tapped_seed7".to_string();
    let golden = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/golden").join(format!("{name}.txt"));
    let mut cases = vec![Case { name, golden, committed: true, model: small, runs }];
    if let Some(dir) = std::env::var_os("KILN_GOLDEN_DIR").filter(|d| !d.is_empty()) {
        cases.extend(cases_in(&PathBuf::from(dir)));
    }
    cases
}

/// The shape of each graph input of the model file `model`.
fn input_dims(model: &[u8]) -> Vec<Vec<usize>> {
    let file = AlignedBytes::copy_of(model);
    let model = Model::from_bytes(&file).expect("a case's model loads");
    model.inputs().map(|t| t.shape.dims().to_vec()).collect()
}

/// The `.kiln` files of `dir` (see the module doc); at least one.
fn cases_in(dir: &std::path::Path) -> Vec<Case> {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("KILN_GOLDEN_DIR {}: {e}", dir.display()));
    let mut paths: Vec<PathBuf> =
        entries.map(|e| e.unwrap().path()).filter(|p| p.extension() == Some("kiln".as_ref())).collect();
    paths.sort();
    assert!(!paths.is_empty(), "KILN_GOLDEN_DIR {} holds no .kiln file", dir.display());
    paths
        .into_iter()
        .map(|path| {
            let model = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let dims = input_dims(&model);
            let mut runs = face_runs(&dims);
            runs.extend(pixel_runs(&dims, &[1]));
            let golden = path.with_extension("txt");
            Case { name: path.display().to_string(), golden, committed: false, model, runs }
        })
        .collect()
}

/// A real face crop (NHWC, RGB 0..255) for a model whose one input
/// (shapes `dims`) is 112x112x3, like SFace; none for other models.
fn face_runs(dims: &[Vec<usize>]) -> Vec<Vec<Vec<f32>>> {
    if dims != [vec![1, 112, 112, 3]] {
        return Vec::new();
    }
    let faces = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/data/faces112");
    vec![vec![rgb_png(&faces.join("obama_00.png"))]]
}

/// The pixels of an 8-bit RGB PNG as f32, in row-major HWC order.
fn rgb_png(path: &std::path::Path) -> Vec<f32> {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut reader = png::Decoder::new(std::io::BufReader::new(file)).read_info().expect("a PNG");
    let mut pixels = vec![0; reader.output_buffer_size().expect("a PNG of sane size")];
    let frame = reader.next_frame(&mut pixels).expect("a PNG frame");
    assert_eq!((frame.color_type, frame.bit_depth), (png::ColorType::Rgb, png::BitDepth::Eight), "{}", path.display());
    pixels[..frame.buffer_size()].iter().map(|&p| f32::from(p)).collect()
}

/// Runs with pseudo-random pixels (0..=255) in every input, one run per
/// seed, plus an all-black and an all-white run (saturating edges).
fn pixel_runs(dims: &[Vec<usize>], seeds: &[u64]) -> Vec<Vec<Vec<f32>>> {
    let sizes: Vec<usize> = dims.iter().map(|d| d.iter().product()).collect();
    let random = seeds.iter().map(|&seed| {
        let mut rng = support::Rng(seed);
        sizes.iter().map(|&n| (0..n).map(|_| (rng.next() % 256) as f32).collect()).collect()
    });
    let flat = [0.0, 255.0].into_iter().map(|v| sizes.iter().map(|&n| vec![v; n]).collect());
    random.chain(flat).collect()
}

/// Every kernel level this CPU can run, `Auto` (what users get) first. The
/// test compares each of them with the golden, so one run covers every ISA
/// level of the machine (under qemu: of the emulated CPU model).
fn levels() -> Vec<Isa> {
    core::iter::once(Isa::Auto).chain(Isa::ALL).filter(|isa| isa.is_supported()).collect()
}

/// Runs a case with the kernels of one level and renders its golden text.
fn render(case: &Case, isa: Isa) -> String {
    let file = AlignedBytes::copy_of(&case.model);
    let model = Model::from_bytes(&file).unwrap_or_else(|e| panic!("case {}: the model does not load: {e}", case.name));
    let mut session = Session::with_options(&model, SessionOptions::isa(isa))
        .unwrap_or_else(|e| panic!("case {}: no session at level {}: {e}", case.name, isa.name()));
    let mut text = format!("model crc32 {:08x}\n", checksum(&case.model));
    for (r, inputs) in case.runs.iter().enumerate() {
        for (i, values) in inputs.iter().enumerate() {
            session.set_input_f32(i, values).unwrap_or_else(|e| panic!("case {}, run {r}, input {i}: {e}", case.name));
        }
        session.run();
        let outputs: Vec<(String, DType)> = model.outputs().map(|t| (t.name.to_string(), t.dtype)).collect();
        for (o, (name, dtype)) in outputs.iter().enumerate() {
            assert_eq!(*dtype, DType::I8, "case {}: output {o} ({name}) is not int8", case.name);
            let bytes = session.output_i8(o).expect("an int8 output");
            let _ = write!(text, "run {r} {name} ");
            for b in bytes {
                let _ = write!(text, "{:02x}", *b as u8);
            }
            text.push('\n');
        }
    }
    text
}

/// Where this test runs, for the failure message.
fn platform(isa: Isa) -> String {
    #[allow(unused_mut)]
    let mut features = Vec::<&str>::new();
    #[cfg(target_arch = "aarch64")]
    {
        if std::arch::is_aarch64_feature_detected!("dotprod") {
            features.push("dotprod");
        }
        if std::arch::is_aarch64_feature_detected!("i8mm") {
            features.push("i8mm");
        }
    }
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            features.push("avx2");
        }
        if std::arch::is_x86_feature_detected!("avx512vnni") {
            features.push("avx512vnni");
        }
    }
    let features =
        if features.is_empty() { "none of the SIMD dot-product ones".to_string() } else { features.join(" ") };
    format!("{} with the {} kernels (CPU features: {features})", std::env::consts::ARCH, isa.name())
}

/// The first difference between the expected and the actual golden text,
/// described per run, output and element.
fn first_difference(expected: &str, actual: &str) -> String {
    let (mut exp, mut act) = (expected.lines(), actual.lines());
    loop {
        match (exp.next(), act.next()) {
            (None, None) => return "no difference".into(),
            (Some(e), Some(a)) if e == a => continue,
            (Some(e), Some(a)) => {
                let (Some((e_key, e_hex)), Some((a_key, a_hex))) = (e.rsplit_once(' '), a.rsplit_once(' ')) else {
                    return format!("expected line `{e}`, got `{a}`");
                };
                if e_key != a_key || e_hex.len() != a_hex.len() {
                    return format!(
                        "the outputs differ in layout: expected `{e_key}` ({} bytes), got `{a_key}` ({} bytes)",
                        e_hex.len() / 2,
                        a_hex.len() / 2
                    );
                }
                if e_key.starts_with("model") {
                    return format!("the model file itself differs: expected `{e}`, got `{a}` (the format or the writer changed, or the model generator is not deterministic across platforms)");
                }
                let byte = |hex: &str, i: usize| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_or(0, |b| b as i8);
                let n = e_hex.len() / 2;
                let diff: Vec<usize> = (0..n).filter(|&i| byte(e_hex, i) != byte(a_hex, i)).collect();
                let i = diff[0];
                return format!(
                    "`{e_key}`: {} of {n} int8 values differ, the first at element {i}: expected {}, got {}",
                    diff.len(),
                    byte(e_hex, i),
                    byte(a_hex, i)
                );
            }
            (e, a) => {
                return format!(
                    "expected line {:?}, got {:?}",
                    e.map(|l| &l[..l.len().min(40)]),
                    a.map(|l| &l[..l.len().min(40)])
                )
            }
        }
    }
}

#[test]
fn outputs_match_the_golden_files() {
    let bless = std::env::var_os("KILN_BLESS").is_some_and(|v| v != "0");
    let mut failures = Vec::new();
    for case in cases() {
        let path = &case.golden;
        if bless || (!case.committed && !path.exists()) {
            // The scalar kernels are the specification.
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, render(&case, Isa::Scalar))
                .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
            eprintln!("blessed {}", path.display());
        }
        let expected = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) => {
                failures.push(format!(
                    "case {}: cannot read its golden file {}: {e}\n  make it with: KILN_BLESS=1 cargo test -p kiln-runtime --test golden",
                    case.name,
                    path.display()
                ));
                continue;
            }
        };
        for isa in levels() {
            let actual = render(&case, isa);
            if expected != actual {
                failures.push(format!(
                    "case {}: the int8 outputs differ from {} on {}:\n  {}",
                    case.name,
                    path.display(),
                    platform(isa),
                    first_difference(&expected, &actual)
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{}\n\nThe int8 outputs must be bit-identical on every target and ISA level. If a kernel changed \
         them, it no longer matches the scalar specification: fix the kernel. If the arithmetic changed \
         on purpose, regenerate with `KILN_BLESS=1 cargo test -p kiln-runtime --test golden`, check the \
         other targets (targets/README.md), and say why in the commit.",
        failures.join("\n")
    );
}

#[test]
fn first_difference_names_the_element() {
    let expected = "model crc32 00000000\nrun 0 conv1 0102ff\n";
    let actual = "model crc32 00000000\nrun 0 conv1 0102fe\n";
    assert_eq!(
        first_difference(expected, actual),
        "`run 0 conv1`: 1 of 3 int8 values differ, the first at element 2: expected -1, got -2"
    );
}
