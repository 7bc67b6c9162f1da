//! The README's table of supported ONNX operators says what the converter
//! does: every op it lowers is listed as int8, or as float if it has no
//! int8 form, and nothing else is listed.

use std::collections::BTreeSet;

use kiln_converter::lower::{lowered_ops, FLOAT_ONLY};

/// The `(op, kiln)` cells of every row of the README's operator table.
fn readme_rows() -> Vec<(String, String)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md");
    let readme = std::fs::read_to_string(path).unwrap();
    let section = readme.split("\n## Supported ONNX operators\n").nth(1).expect("the README has the section");
    let section = section.split("\n## ").next().unwrap();
    section
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let op = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
            Some((op.to_string(), cells.get(2)?.to_string()))
        })
        .collect()
}

#[test]
fn readme_operator_table_matches_the_converter() {
    let rows = readme_rows();
    let listed =
        |kind: &str| -> BTreeSet<String> { rows.iter().filter(|(_, k)| k == kind).map(|(op, _)| op.clone()).collect() };
    let float: BTreeSet<String> = FLOAT_ONLY.iter().map(|s| s.to_string()).collect();
    let int8: BTreeSet<String> = lowered_ops().map(String::from).filter(|op| !float.contains(op)).collect();
    assert_eq!(listed("int8"), int8, "the README's int8 rows against the converter's lowering table");
    assert_eq!(listed("float"), float, "the README's float rows against FLOAT_ONLY");
    assert_eq!(rows.len(), int8.len() + float.len(), "every row is int8 or float only, once: {rows:?}");
}
