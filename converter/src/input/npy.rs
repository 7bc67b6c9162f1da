//! A reader for NumPy `.npy` files holding one little-endian f32 array in C
//! order, the one case kiln needs (the format: numpy's `format.py` docs).

use std::path::Path;

use anyhow::{bail, ensure, Context, Result};

/// Reads `path`, which must hold as many f32 values as `shape` (leading
/// dimensions of 1 may be missing or extra).
pub(super) fn read(path: &Path, shape: &[usize]) -> Result<Vec<f32>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    parse(&bytes, shape).with_context(|| format!("{} is not a usable .npy file", path.display()))
}

/// The bytes of a `.npy` file (version 1.0) holding `values`, little-endian
/// f32 in C order, of `shape`.
pub fn encode(shape: &[usize], values: &[f32]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| format!("{d}, ")).collect();
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({}), }}", dims.concat());
    // The header ends in a newline, padded so that the data is 64-aligned.
    while !(10 + header.len() + 1).is_multiple_of(64) {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend((header.len() as u16).to_le_bytes());
    bytes.extend(header.as_bytes());
    values.iter().for_each(|v| bytes.extend(v.to_le_bytes()));
    bytes
}

fn parse(bytes: &[u8], shape: &[usize]) -> Result<Vec<f32>> {
    ensure!(bytes.len() >= 10 && bytes.starts_with(b"\x93NUMPY"), "no .npy magic");
    let (header_len, start) = match bytes[6] {
        1 => (usize::from(u16::from_le_bytes([bytes[8], bytes[9]])), 10),
        2 | 3 if bytes.len() >= 12 => (u32::from_le_bytes(bytes[8..12].try_into()?) as usize, 12),
        v => bail!("unsupported .npy version {v}"),
    };
    let header = bytes.get(start..start + header_len).context("truncated header")?;
    let header = core::str::from_utf8(header)?;
    ensure!(header.contains("'descr': '<f4'"), "holds {header:?}; kiln needs little-endian f32 ('<f4')");
    ensure!(header.contains("'fortran_order': False"), "is in Fortran order; kiln needs C order");
    let dims = header.split("'shape': (").nth(1).and_then(|s| s.split(')').next()).context("no shape in header")?;
    let dims: Vec<usize> = dims
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| d.parse().with_context(|| format!("bad dimension {d:?}")))
        .collect::<Result<_>>()?;
    let strip = |s: &[usize]| s.iter().copied().skip_while(|&d| d == 1).collect::<Vec<_>>();
    ensure!(strip(&dims) == strip(shape), "has shape {dims:?}, the model takes {shape:?}");
    let data = &bytes[start + header_len..];
    let count: usize = shape.iter().product();
    ensure!(data.len() == count * 4, "holds {} bytes of data for {count} f32 values", data.len());
    let values: Vec<f32> = data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    if let Some((i, v)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        bail!("value {i} is {v}: inputs must be finite numbers");
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file with a hand-written header, for the odd cases.
    fn npy(header: &str, values: &[f32]) -> Vec<u8> {
        let mut bytes = encode(&[values.len()], values);
        let data = bytes.len() - 4 * values.len();
        bytes.splice(10..data, format!("{header:<width$}\n", width = data - 11).into_bytes());
        bytes
    }

    #[test]
    fn reads_what_it_writes() {
        let b = encode(&[1, 2, 1, 2], &[1.0, -2.5, 3.0, 4.0]);
        assert_eq!(parse(&b, &[1, 2, 1, 2]).unwrap(), vec![1.0, -2.5, 3.0, 4.0]);
        assert_eq!(parse(&encode(&[3], &[7.0; 3]), &[3]).unwrap(), vec![7.0; 3]);
    }

    #[test]
    fn reads_f32_c_order() {
        let b = npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2, 1, 2), }", &[1.0, -2.5, 3.0, 4.0]);
        assert_eq!(parse(&b, &[1, 2, 1, 2]).unwrap(), vec![1.0, -2.5, 3.0, 4.0]);
        // A missing batch dimension is fine.
        let b = npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 1, 2), }", &[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(parse(&b, &[1, 2, 1, 2]).unwrap().len(), 4);
    }

    #[test]
    fn rejects_wrong_type_and_shape() {
        let b = npy("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", &[0.0; 4]);
        assert!(parse(&b, &[2]).unwrap_err().to_string().contains("'<f4'"));
        let b = npy("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", &[0.0; 3]);
        assert!(parse(&b, &[1, 2]).unwrap_err().to_string().contains("has shape [3]"));
    }
}
