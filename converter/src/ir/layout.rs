//! Axis permutations of dense row-major f32 data: NCHW↔NHWC for activations,
//! OIHW→OHWI for conv weights, and the IR's Transpose op.

/// Permutes `data` of `shape`: output axis `i` is input axis `perm[i]`.
pub fn transpose(data: &[f32], shape: &[usize], perm: &[usize]) -> Vec<f32> {
    let rank = shape.len();
    let mut in_strides = vec![1; rank];
    for a in (0..rank.saturating_sub(1)).rev() {
        in_strides[a] = in_strides[a + 1] * shape[a + 1];
    }
    let out_shape: Vec<usize> = perm.iter().map(|&p| shape[p]).collect();
    let strides: Vec<usize> = perm.iter().map(|&p| in_strides[p]).collect();
    let mut out = Vec::with_capacity(data.len());
    let mut index = vec![0; rank];
    for _ in 0..data.len() {
        out.push(data[index.iter().zip(&strides).map(|(i, s)| i * s).sum::<usize>()]);
        for a in (0..rank).rev() {
            index[a] += 1;
            if index[a] < out_shape[a] {
                break;
            }
            index[a] = 0;
        }
    }
    out
}

/// An ONNX NCHW tensor in the IR's NHWC order.
pub fn nchw_to_nhwc(data: &[f32], nchw: &[usize]) -> Vec<f32> {
    transpose(data, nchw, &super::NCHW_TO_NHWC)
}

/// An IR NHWC tensor in ONNX's NCHW order.
pub fn nhwc_to_nchw(data: &[f32], nhwc: &[usize]) -> Vec<f32> {
    transpose(data, nhwc, &super::NHWC_TO_NCHW)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nchw_round_trip() {
        let data: Vec<f32> = (0..24).map(|x| x as f32).collect();
        let nhwc = nchw_to_nhwc(&data, &[1, 2, 3, 4]);
        // NHWC element (h=0, w=1) holds channels 0 and 1 of pixel 1.
        assert_eq!(&nhwc[2..4], &[1.0, 13.0]);
        assert_eq!(nhwc_to_nchw(&nhwc, &[1, 3, 4, 2]), data);
    }
}
