//! Pooling: max_pool, avg_pool (count_include_pad both ways),
//! global_avg_pool and reduce (mean and max over the last axis), against
//! ONNX's definitions.

use kiln_runtime::kernels::{scalar, QIn, QOut};
use kiln_runtime::ops::Pool;
use proptest::prelude::*;

use crate::reference::{calibrate, check, check_exact, quant, reals, run, shape, Rng};

#[derive(Clone, Debug)]
struct PoolCase {
    dims: [usize; 4],
    pool: Pool,
    stretch: f64,
    seed: u64,
}

fn pool_case() -> impl Strategy<Value = PoolCase> {
    let window = (
        [1..=4usize, 1..=4usize],
        [1..=3usize, 1..=3usize],
        [0..4usize, 0..4usize, 0..4usize, 0..4usize],
        any::<bool>(),
    );
    (1..=2usize, [1..=8usize, 1..=8usize], 1..=5usize, window, 0.9..1.2f64, any::<u64>()).prop_map(
        |(n, mut size, c, (kernel, stride, mut pad, count_include_pad), stretch, seed)| {
            // Padding smaller than the window, and an input that the padded
            // window fits.
            for (i, p) in pad.iter_mut().enumerate() {
                *p %= kernel[i % 2];
            }
            for a in 0..2 {
                size[a] = size[a].max(kernel[a].saturating_sub(pad[a] + pad[a + 2]));
            }
            let pool = Pool { kernel, stride, pad, count_include_pad };
            PoolCase { dims: [n, size[0], size[1], c], pool, stretch, seed }
        },
    )
}

/// ONNX pooling over NHWC `x` in f64: each output reduces, per channel, the
/// input positions `o * stride - pad_begin + k` (k below the window size)
/// that fall inside the input; `divisor` gives the divisor for an average
/// (from the count of those positions), or `None` for the maximum.
fn pool_reference(c: &PoolCase, x: &[f64], divisor: Option<&dyn Fn(usize) -> f64>) -> (Vec<f64>, [usize; 4]) {
    let [n, h, w, ch] = c.dims;
    let p = &c.pool;
    let out = |a: usize| (c.dims[1 + a] + p.pad[a] + p.pad[a + 2] - p.kernel[a]) / p.stride[a] + 1;
    let dims = [n, out(0), out(1), ch];
    let mut y = Vec::new();
    for b in 0..n {
        for oy in 0..dims[1] {
            for ox in 0..dims[2] {
                for k in 0..ch {
                    let mut values = Vec::new();
                    for ky in 0..p.kernel[0] {
                        for kx in 0..p.kernel[1] {
                            let iy = (oy * p.stride[0] + ky) as isize - p.pad[0] as isize;
                            let ix = (ox * p.stride[1] + kx) as isize - p.pad[1] as isize;
                            if (0..h as isize).contains(&iy) && (0..w as isize).contains(&ix) {
                                values.push(x[((b * h + iy as usize) * w + ix as usize) * ch + k]);
                            }
                        }
                    }
                    y.push(match divisor {
                        Some(d) => values.iter().sum::<f64>() / d(values.len()),
                        None => values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                    });
                }
            }
        }
    }
    (y, dims)
}

#[test]
fn max_pool_matches_f64() {
    run("max_pool", 1024, 0.05, pool_case(), |c| {
        let mut rng = Rng(c.seed);
        let q = quant(rng.uniform(0.01, 0.1), rng.int(-64, 64));
        let x = rng.i8s(c.dims.iter().product());
        let (want, dims) = pool_reference(c, &reals(&x, q), None);
        let mut y = vec![0i8; want.len()];
        scalar::max_pool(
            &c.pool,
            QIn { data: &x, shape: shape(&c.dims), quant: q },
            QOut { data: &mut y, shape: shape(&dims), quant: q },
        );
        check_exact(&|| format!("max_pool: x {:?} {q:?}, {:?}", c.dims, c.pool), &y, &want, &dims, q)
    });
}

#[test]
fn avg_pool_matches_f64() {
    run("avg_pool", 1024, 0.05, pool_case(), |c| {
        let mut rng = Rng(c.seed);
        let xq = quant(rng.uniform(0.01, 0.1), rng.int(-64, 64));
        let x = rng.i8s(c.dims.iter().product());
        // count_include_pad divides by the whole window, else by the
        // positions inside the input.
        let area = (c.pool.kernel[0] * c.pool.kernel[1]) as f64;
        let divisor = |valid: usize| if c.pool.count_include_pad { area } else { valid as f64 };
        let (want, dims) = pool_reference(c, &reals(&x, xq), Some(&divisor));
        let yq = calibrate(&want, c.stretch);
        let mut y = vec![0i8; want.len()];
        scalar::avg_pool(
            &c.pool,
            QIn { data: &x, shape: shape(&c.dims), quant: xq },
            QOut { data: &mut y, shape: shape(&dims), quant: yq },
        );
        check(&|| format!("avg_pool: x {:?} {xq:?}, {:?}", c.dims, c.pool), &y, &want, &dims, yq)
    });
}

#[test]
fn global_avg_pool_matches_f64() {
    // Few outputs per case: a calibration that clips the extremes clips a
    // larger share of them.
    let case = (1..=2usize, 1..=10usize, 1..=10usize, 1..=8usize, 0.9..1.2f64, any::<u64>());
    run("global_avg_pool", 1024, 0.1, case, |&(n, h, w, c, stretch, seed)| {
        let mut rng = Rng(seed);
        let xq = quant(rng.uniform(0.01, 0.1), rng.int(-64, 64));
        let x = rng.i8s(n * h * w * c);
        let xr = reals(&x, xq);
        // The mean over H and W of each image and channel.
        let want: Vec<f64> = (0..n * c)
            .map(|at| {
                let (b, k) = (at / c, at % c);
                (0..h * w).map(|i| xr[(b * h * w + i) * c + k]).sum::<f64>() / (h * w) as f64
            })
            .collect();
        let yq = calibrate(&want, stretch);
        let mut y = vec![0i8; n * c];
        let dims = [n, 1, 1, c];
        scalar::global_avg_pool(
            QIn { data: &x, shape: shape(&[n, h, w, c]), quant: xq },
            QOut { data: &mut y, shape: shape(&dims), quant: yq },
        );
        check(&|| format!("global_avg_pool: x [{n}, {h}, {w}, {c}] {xq:?}"), &y, &want, &dims, yq)
    });
}

#[test]
fn reduce_matches_f64() {
    let case = (proptest::collection::vec(1..=6usize, 1..=4), any::<bool>(), 0.9..1.2f64, any::<u64>());
    run("reduce", 1024, 0.1, case, |(dims, max, stretch, seed)| {
        let mut rng = Rng(*seed);
        let xq = quant(rng.uniform(0.01, 0.1), rng.int(-64, 64));
        let x = rng.i8s(dims.iter().product());
        let n = *dims.last().unwrap();
        // ONNX ReduceMean / ReduceMax over the last axis, keeping it as 1.
        let want: Vec<f64> =
            reals(&x, xq)
                .chunks(n)
                .map(|row| {
                    if *max {
                        row.iter().copied().fold(f64::MIN, f64::max)
                    } else {
                        row.iter().sum::<f64>() / n as f64
                    }
                })
                .collect();
        let yq = calibrate(&want, *stretch);
        let mut y_dims = dims.clone();
        *y_dims.last_mut().unwrap() = 1;
        let mut y = vec![0i8; want.len()];
        scalar::reduce(
            *max,
            QIn { data: &x, shape: shape(dims), quant: xq },
            QOut { data: &mut y, shape: shape(&y_dims), quant: yq },
        );
        check(&|| format!("reduce (max {max}): x {dims:?} {xq:?}"), &y, &want, &y_dims, yq)
    });
}
