//! Writing the user's output files safely.
//!
//! Every file the CLI writes (a `.kiln`, a crop, a plot, a JSON report) goes
//! first to a temporary file in the same folder, is synced to disk, and only
//! then renamed over the destination. A full disk, a crash or a kill midway
//! leaves whatever was at the destination untouched, and a reader never sees
//! half a file. An output path that names one of the command's own inputs is
//! refused before any work is done.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// Writes `bytes` to `path` atomically (see the module doc).
pub fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    write_with(path, |file| file.write_all(bytes))
}

/// Writes `path` atomically with `fill`, which writes the whole content into
/// the temporary file it is given. If `fill` or any later step fails, the
/// temporary file is removed and `path` is as it was.
pub fn write_with(path: &Path, fill: impl FnOnce(&mut File) -> io::Result<()>) -> Result<()> {
    let temporary = temporary_path(path)?;
    let written = File::create(&temporary)
        .and_then(|mut file| {
            fill(&mut file)?;
            file.sync_all()
        })
        .and_then(|()| fs::rename(&temporary, path));
    if let Err(e) = written {
        let _ = fs::remove_file(&temporary);
        return Err(e).with_context(|| format!("cannot write {} (it was left as it was)", path.display()));
    }
    // Make the rename itself durable; a folder that cannot be opened for
    // syncing (some file systems) still holds the file.
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let _ = File::open(dir).and_then(|d| d.sync_all());
    }
    Ok(())
}

/// A name in `path`'s folder, unique to this process, for the file being
/// written: the rename into place must not cross file systems.
fn temporary_path(path: &Path) -> Result<PathBuf> {
    let Some(name) = path.file_name() else {
        bail!("{} is not a file name: give a path such as out.kiln", path.display());
    };
    let mut temporary = std::ffi::OsString::from(".");
    temporary.push(name);
    temporary.push(format!(".{}.partial", std::process::id()));
    Ok(path.with_file_name(temporary))
}

/// Fails when `output` is the same file as one of `inputs` (by identity, so
/// that another spelling, a symbolic link or a hard link is caught too).
pub fn ensure_not_an_input<'a>(output: &Path, inputs: impl IntoIterator<Item = &'a Path>) -> Result<()> {
    let Ok(out) = fs::metadata(output) else {
        // Nothing is there yet, so it is none of the inputs.
        return Ok(());
    };
    for input in inputs {
        if fs::metadata(input).is_ok_and(|meta| same_file(&meta, &out)) {
            bail!(
                "the output {} is the input {}: writing it would destroy the input; choose another output path",
                output.display(),
                input.display()
            );
        }
    }
    Ok(())
}

#[cfg(unix)]
fn same_file(a: &fs::Metadata, b: &fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    (a.dev(), a.ino()) == (b.dev(), b.ino())
}

#[cfg(not(unix))]
fn same_file(a: &fs::Metadata, b: &fs::Metadata) -> bool {
    // Without inode numbers: the same size and modification time is the
    // best cheap evidence; a false alarm only asks for another path.
    a.len() == b.len() && a.modified().ok() == b.modified().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("kiln-output-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_failed_write_keeps_the_old_file_and_leaves_no_partial_file() {
        let dir = scratch("failed");
        let path = dir.join("model.kiln");
        fs::write(&path, b"the user's good model").unwrap();
        let err = write_with(&path, |file| {
            file.write_all(b"half a mod")?;
            Err(io::Error::new(io::ErrorKind::StorageFull, "no space left on device"))
        })
        .unwrap_err();
        assert!(format!("{err:#}").contains("left as it was"), "{err:#}");
        assert_eq!(fs::read(&path).unwrap(), b"the user's good model");
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1, "the partial file is removed");
    }

    #[test]
    fn a_write_replaces_the_file_whole() {
        let dir = scratch("replace");
        let path = dir.join("plot.svg");
        fs::write(&path, b"old").unwrap();
        write(&path, b"new content").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new content");
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
    }

    #[test]
    fn an_output_that_is_an_input_is_refused_however_it_is_spelled() {
        let dir = scratch("same");
        let model = dir.join("m.onnx");
        fs::write(&model, b"onnx").unwrap();
        let other = dir.join("other.onnx");
        fs::write(&other, b"other").unwrap();
        let spelled_otherwise = dir.join(".").join("m.onnx");
        assert!(ensure_not_an_input(&spelled_otherwise, [model.as_path()]).is_err());
        let linked = dir.join("hard-link.onnx");
        fs::hard_link(&model, &linked).unwrap();
        assert!(ensure_not_an_input(&linked, [other.as_path(), model.as_path()]).is_err());
        assert!(ensure_not_an_input(&other, [model.as_path()]).is_ok());
        assert!(ensure_not_an_input(&dir.join("new.kiln"), [model.as_path()]).is_ok());
    }
}
