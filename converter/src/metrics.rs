//! How close a model's outputs are to the reference's.

/// Cosine similarity of two vectors, accumulated in f64.
pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum();
    let norm = |v: &[f32]| v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    dot / (norm(a) * norm(b))
}

/// The pairs `(i, j)`, `i < j`, of outputs whose same/different decision
/// (cosine ≥ `threshold`: e.g. same person for face embeddings) differs
/// between `test` and `reference`; and how many pairs there are.
pub fn disagreeing_pairs(reference: &[Vec<f32>], test: &[Vec<f32>], threshold: f64) -> (Vec<(usize, usize)>, usize) {
    let n = reference.len().min(test.len());
    let pairs: Vec<(usize, usize)> = (0..n).flat_map(|i| (i + 1..n).map(move |j| (i, j))).collect();
    let decide = |v: &[Vec<f32>], (i, j): (usize, usize)| cosine(&v[i], &v[j]) >= threshold;
    let total = pairs.len();
    (pairs.into_iter().filter(|&p| decide(reference, p) != decide(test, p)).collect(), total)
}
