//! Kernels that place elements: concat_part (which also requantizes),
//! transpose, pad, slice and zero_insert.

use kiln_runtime::kernels::{scalar, QIn, QOut};
use proptest::prelude::*;

use crate::reference::{calibrate, check, check_exact, quant, ravel, real, reals, run, shape, unravel, Rng, Stats};

#[derive(Clone, Debug)]
struct ConcatCase {
    /// Output dimensions apart from the axis.
    dims: Vec<usize>,
    axis: usize,
    /// Size of each input along the axis.
    parts: Vec<usize>,
    stretch: f64,
    seed: u64,
}

fn concat_case() -> impl Strategy<Value = ConcatCase> {
    (
        proptest::collection::vec(1..=4usize, 1..=4),
        0..4usize,
        proptest::collection::vec(1..=3usize, 1..=4),
        0.9..1.2f64,
        any::<u64>(),
    )
        .prop_map(|(dims, axis, parts, stretch, seed)| ConcatCase {
            axis: axis % dims.len(),
            dims,
            parts,
            stretch,
            seed,
        })
}

fn run_concat(c: &ConcatCase) -> Result<Stats, TestCaseError> {
    let mut rng = Rng(c.seed);
    let with_axis = |size: usize| {
        let mut d = c.dims.clone();
        d[c.axis] = size;
        d
    };
    let inputs: Vec<_> = c
        .parts
        .iter()
        .map(|&size| {
            let d = with_axis(size);
            let q = quant(rng.uniform(0.02, 0.1), rng.int(-64, 64));
            (rng.i8s(d.iter().product()), d, q)
        })
        .collect();
    let y_dims = with_axis(c.parts.iter().sum());
    // Concat: output position `p` along the axis belongs to the input whose
    // parts before it sum to at most `p`.
    let len: usize = y_dims.iter().product();
    let want: Vec<f64> = (0..len)
        .map(|i| {
            let mut idx = unravel(i, &y_dims);
            let mut part = 0;
            while idx[c.axis] >= c.parts[part] {
                idx[c.axis] -= c.parts[part];
                part += 1;
            }
            let (data, dims, q) = &inputs[part];
            real(data[ravel(&idx, dims)], *q)
        })
        .collect();
    let all: Vec<f64> = inputs.iter().flat_map(|(data, _, q)| reals(data, *q)).collect();
    let yq = calibrate(&all, c.stretch);
    let mut y = vec![0i8; len];
    let mut offset = 0;
    for (data, dims, q) in &inputs {
        let x = QIn { data, shape: shape(dims), quant: *q };
        scalar::concat_part(x, c.axis, offset, QOut { data: &mut y, shape: shape(&y_dims), quant: yq });
        offset += dims[c.axis];
    }
    let case = || {
        let parts: Vec<_> = inputs.iter().map(|(_, d, q)| (d, q)).collect();
        format!("concat along {}: inputs {parts:?}", c.axis)
    };
    check(&case, &y, &want, &y_dims, yq)
}

#[test]
fn concat_part_matches_f64() {
    run("concat_part", 1024, 0.05, concat_case(), run_concat);
}

/// Transpose of a random tensor of dimensions `dims` by `perm`: `y` has
/// dimensions `dims[perm[k]]` and `y[i] = x[j]` with `j[perm[k]] = i[k]`.
fn run_transpose(dims: &[usize], perm: &[usize], seed: u64) -> Result<Stats, TestCaseError> {
    let mut rng = Rng(seed);
    let q = quant(0.05, rng.int(-64, 64));
    let x = rng.i8s(dims.iter().product());
    let y_dims: Vec<usize> = perm.iter().map(|&p| dims[p]).collect();
    let want: Vec<f64> = (0..x.len())
        .map(|i| {
            let idx = unravel(i, &y_dims);
            let mut j = vec![0; dims.len()];
            for (k, &p) in perm.iter().enumerate() {
                j[p] = idx[k];
            }
            real(x[ravel(&j, dims)], q)
        })
        .collect();
    let mut y = vec![0i8; x.len()];
    scalar::transpose(
        QIn { data: &x, shape: shape(dims), quant: q },
        perm,
        QOut { data: &mut y, shape: shape(&y_dims), quant: q },
    );
    check_exact(&|| format!("transpose of {dims:?} by {perm:?}"), &y, &want, &y_dims, q)
}

/// Every permutation of `0..n`.
fn permutations(n: usize) -> Vec<Vec<usize>> {
    if n == 0 {
        return vec![vec![]];
    }
    let mut all = Vec::new();
    for p in permutations(n - 1) {
        for at in 0..n {
            let mut q = p.clone();
            q.insert(at, n - 1);
            all.push(q);
        }
    }
    all
}

#[test]
fn transpose_matches_every_permutation() {
    // Distinct dimensions, so that a mixed-up axis changes the output shape
    // or the order.
    let mut count = 0;
    for rank in 1..=4 {
        let dims = &[2, 3, 4, 5][..rank];
        for perm in permutations(rank) {
            if let Err(e) = run_transpose(dims, &perm, 42 + count) {
                panic!("{e}");
            }
            count += 1;
        }
    }
    assert_eq!(count, 1 + 2 + 6 + 24);
}

#[test]
fn transpose_matches_f64() {
    let case = proptest::collection::vec(1..=5usize, 1..=4).prop_flat_map(|dims| {
        let perm = Just((0..dims.len()).collect::<Vec<_>>()).prop_shuffle();
        (Just(dims), perm, any::<u64>())
    });
    run("transpose", 512, 0.02, case, |(dims, perm, seed)| run_transpose(dims, perm, *seed));
}

#[test]
fn pad_matches_f64() {
    let case = proptest::collection::vec((1..=4usize, 0..=2usize, 0..=2usize), 1..=4);
    run("pad", 512, 0.02, (case, any::<u64>()), |(axes, seed)| {
        let mut rng = Rng(*seed);
        let q = quant(0.05, rng.int(-64, 64));
        // Real zero, or another value (a folded input normalisation pads
        // with the raw value that stood for zero).
        let value = if rng.int(0, 1) == 0 { q.zero_point } else { rng.int(-128, 127) };
        let dims: Vec<usize> = axes.iter().map(|a| a.0).collect();
        let before: Vec<usize> = axes.iter().map(|a| a.1).collect();
        let y_dims: Vec<usize> = axes.iter().map(|&(d, b, a)| b + d + a).collect();
        let x = rng.i8s(dims.iter().product());
        // Constant padding: `y[i] = x[i - before]` inside, `value` outside.
        let want: Vec<f64> = (0..y_dims.iter().product())
            .map(|i| {
                let idx = unravel(i, &y_dims);
                let inside = idx.iter().zip(&before).zip(&dims).all(|((&i, &b), &d)| i >= b && i < b + d);
                if inside {
                    let j: Vec<usize> = idx.iter().zip(&before).map(|(&i, &b)| i - b).collect();
                    real(x[ravel(&j, &dims)], q)
                } else {
                    real(value as i8, q)
                }
            })
            .collect();
        let mut y = vec![0i8; want.len()];
        scalar::pad(
            QIn { data: &x, shape: shape(&dims), quant: q },
            &before,
            value as i8,
            QOut { data: &mut y, shape: shape(&y_dims), quant: q },
        );
        check_exact(
            &|| format!("pad of {dims:?} {q:?} to {y_dims:?}, before {before:?}, value {value}"),
            &y,
            &want,
            &y_dims,
            q,
        )
    });
}

#[test]
fn slice_matches_f64() {
    // Per axis: input size, first index, step (negative walks backwards) and
    // a count that the input holds.
    let axis = (2..=8usize, 0..4usize, prop_oneof![1..=2isize, -2..=-1isize], 2..=8usize);
    run("slice", 512, 0.02, (proptest::collection::vec(axis, 1..=4), any::<u64>()), |(axes, seed)| {
        let mut rng = Rng(*seed);
        let q = quant(0.05, rng.int(-64, 64));
        let dims: Vec<usize> = axes.iter().map(|a| a.0).collect();
        // Backward steps start near the end.
        let start: Vec<usize> = axes.iter().map(|&(d, s, k, _)| if k < 0 { d - 1 - s % d } else { s % d }).collect();
        let step: Vec<isize> = axes.iter().map(|a| a.2).collect();
        // As many elements as fit from `start` by `step`, at most the count.
        let y_dims: Vec<usize> = axes
            .iter()
            .zip(&start)
            .map(|(&(d, _, k, n), &s)| {
                let room = if k > 0 { (d - 1 - s) / k as usize } else { s / k.unsigned_abs() };
                n.min(room + 1)
            })
            .collect();
        let x = rng.i8s(dims.iter().product());
        let want: Vec<f64> = (0..y_dims.iter().product())
            .map(|i| {
                let idx = unravel(i, &y_dims);
                let j: Vec<usize> = idx
                    .iter()
                    .zip(&start)
                    .zip(&step)
                    .map(|((&i, &s), &k)| (s as isize + i as isize * k) as usize)
                    .collect();
                real(x[ravel(&j, &dims)], q)
            })
            .collect();
        let mut y = vec![0i8; want.len()];
        scalar::slice(
            QIn { data: &x, shape: shape(&dims), quant: q },
            &start,
            &step,
            QOut { data: &mut y, shape: shape(&y_dims), quant: q },
        );
        check_exact(&|| format!("slice of {dims:?} from {start:?} by {step:?} to {y_dims:?}"), &y, &want, &y_dims, q)
    });
}

#[test]
fn zero_insert_matches_f64() {
    let case = ([1..=2usize, 1..=5, 1..=5, 1..=4], [1..=3usize, 1..=3], any::<u64>());
    run("zero_insert", 512, 0.02, case, |(dims, stride, seed)| {
        let mut rng = Rng(*seed);
        let q = quant(0.05, rng.int(-128, 127));
        let [n, h, w, c] = *dims;
        let y_dims = [n, (h - 1) * stride[0] + 1, (w - 1) * stride[1] + 1, c];
        let x = rng.i8s(dims.iter().product());
        // `y[b, i, j, k] = x[b, i / sh, j / sw, k]` where both divide, real zero elsewhere.
        let want: Vec<f64> = (0..y_dims.iter().product())
            .map(|i| match unravel(i, &y_dims)[..] {
                [b, i, j, k] if i % stride[0] == 0 && j % stride[1] == 0 => {
                    real(x[ravel(&[b, i / stride[0], j / stride[1], k], dims)], q)
                }
                _ => 0.0,
            })
            .collect();
        let mut y = vec![0i8; want.len()];
        scalar::zero_insert(
            QIn { data: &x, shape: shape(dims), quant: q },
            *stride,
            QOut { data: &mut y, shape: shape(&y_dims), quant: q },
        );
        check_exact(&|| format!("zero insertion of {dims:?} {q:?} at stride {stride:?}"), &y, &want, &y_dims, q)
    });
}
