//! The embedder: an SFace `.kiln` session that turns an aligned crop into
//! a vector; two faces are the same person when their vectors' cosine
//! similarity reaches [`SFACE_SAME_PERSON`].

use alloc::format;
use alloc::vec;
use alloc::vec::Vec;

use kiln_runtime::Session;

use crate::align::CROP;
use crate::error::FaceError;

/// OpenCV's cosine-similarity threshold for SFace: at or above it, the two
/// faces are taken for the same person.
pub const SFACE_SAME_PERSON: f32 = 0.363;

/// A face-embedding model (SFace) on a kiln session. After
/// [`Embedder::new`], [`Embedder::embed`] allocates nothing.
pub struct Embedder<'m> {
    session: Session<'m>,
    input: Vec<f32>,
    dims: usize,
}

impl<'m> Embedder<'m> {
    /// Wraps a session of an embedding model: one `[1, 112, 112, 3]` RGB
    /// input, one output vector. Anything else is
    /// [`FaceError::NotAnEmbedder`].
    pub fn new(session: Session<'m>) -> Result<Self, FaceError> {
        let model = session.model();
        let (inputs, outputs) = (model.inputs(), model.outputs());
        if inputs.len() != 1 || outputs.len() != 1 {
            return Err(FaceError::NotAnEmbedder(format!(
                "it has {} inputs and {} outputs, an embedder has one of each",
                inputs.len(),
                outputs.len()
            )));
        }
        let dims = model.inputs().next().map(|i| i.shape);
        if dims.map(|s| s.dims().to_vec()) != Some(vec![1, CROP, CROP, 3]) {
            return Err(FaceError::NotAnEmbedder(format!(
                "its input has shape {:?}, an embedder takes [1, {CROP}, {CROP}, 3]",
                dims.map(|s| s.dims().to_vec()).unwrap_or_default()
            )));
        }
        let dims = model.outputs().next().map_or(0, |o| o.shape.elements());
        Ok(Embedder { session, input: vec![0.0; CROP * CROP * 3], dims })
    }

    /// Length of the embedding.
    pub fn dims(&self) -> usize {
        self.dims
    }

    /// Writes the embedding of an aligned RGB crop into `embedding`
    /// ([`Embedder::dims`] values).
    pub fn embed(&mut self, crop: &[u8; CROP * CROP * 3], embedding: &mut [f32]) -> Result<(), FaceError> {
        for (x, &p) in self.input.iter_mut().zip(crop.iter()) {
            *x = f32::from(p);
        }
        self.session.set_input_f32(0, &self.input)?;
        self.session.run();
        self.session.output_f32(0, embedding)?;
        Ok(())
    }
}

/// Cosine similarity of two embeddings (0 when either is all zero).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let (mut dot, mut aa, mut bb) = (0.0f64, 0.0f64, 0.0f64);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (f64::from(x), f64::from(y));
        dot += x * y;
        aa += x * x;
        bb += y * y;
    }
    let norm = libm::sqrt(aa * bb);
    if norm > 0.0 {
        (dot / norm) as f32
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_of_parallel_orthogonal_and_zero_vectors() {
        assert!((cosine(&[1.0, 2.0], &[2.0, 4.0]) - 1.0).abs() < 1e-7);
        assert_eq!(cosine(&[1.0, 0.0], &[0.0, 3.0]), 0.0);
        assert_eq!(cosine(&[0.0, 0.0], &[1.0, 1.0]), 0.0);
    }
}
