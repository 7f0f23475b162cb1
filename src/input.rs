//! Reading the files a user names (config, scenarios) and pointing into
//! them: only regular files, never blocking (a FIFO or a device is refused
//! at once), never more than a limit; and line:column of a byte offset.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Why a file could not be read.
#[derive(Debug, Clone, PartialEq)]
pub enum ReadError {
    NotFound,
    /// One sentence: what is wrong and what to do.
    Other(String),
}

/// What [`read_bytes`] says of a path that is not a regular file.
pub const NOT_REGULAR: &str = "it is not a regular file (a folder, FIFO or device)";

/// The text of the regular file at `path`, at most `limit` bytes.
pub fn read_text(path: &Path, limit: u64) -> Result<String, ReadError> {
    let bytes = read_bytes(path, limit).map_err(|e| match e {
        ReadError::Other(s) if s == NOT_REGULAR => {
            ReadError::Other(format!("{s}; give the path of a TOML file"))
        }
        e => e,
    })?;
    String::from_utf8(bytes).map_err(|e| {
        ReadError::Other(format!(
            "it is not UTF-8 text (bad byte at offset {}); save it as UTF-8",
            e.utf8_error().valid_up_to()
        ))
    })
}

/// The bytes of the regular file at `path`, at most `limit`: the one way
/// vmshift reads a file it did not just write (config, scenarios, every
/// file of the state dir). A FIFO, a folder or a device (a link to
/// `/dev/zero`) is refused at once, never waited on or read without end.
pub fn read_bytes(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    // O_NONBLOCK: opening a FIFO without a writer must not wait for one.
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| {
            // A file under something that is not a folder does not exist.
            if e.kind() == std::io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENOTDIR) {
                ReadError::NotFound
            } else {
                ReadError::Other(format!("cannot open it ({e})"))
            }
        })?;
    let meta = f
        .metadata()
        .map_err(|e| ReadError::Other(format!("cannot read it ({e})")))?;
    if !meta.is_file() {
        return Err(ReadError::Other(NOT_REGULAR.into()));
    }
    if meta.len() > limit {
        return Err(ReadError::Other(format!(
            "it is {} bytes, more than the {limit} bytes such a file may have",
            meta.len()
        )));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    File::take(f, limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| ReadError::Other(format!("cannot read it ({e})")))?;
    if bytes.len() as u64 > limit {
        return Err(ReadError::Other(format!(
            "it grew beyond the {limit} bytes such a file may have while being read"
        )));
    }
    Ok(bytes)
}

/// A state-dir file at `path` (`None` when there is none), read as
/// [`read_bytes`] does; an error is "cannot read `what` `path`: why".
pub fn read_state(path: &Path, what: &str, limit: u64) -> Result<Option<Vec<u8>>, String> {
    match read_bytes(path, limit) {
        Ok(b) => Ok(Some(b)),
        Err(ReadError::NotFound) => Ok(None),
        Err(ReadError::Other(e)) => Err(format!("cannot read {what} {}: {e}", path.display())),
    }
}

/// Line and column (1-based, columns in characters) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fifo_or_a_folder_is_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo with a valid C string.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        for p in [fifo.as_path(), dir.path()] {
            let Err(ReadError::Other(e)) = read_text(p, 1024) else {
                panic!("{p:?} was read")
            };
            assert!(e.contains("not a regular file"), "{e}");
        }
        assert_eq!(
            read_text(&dir.path().join("none"), 10),
            Err(ReadError::NotFound)
        );
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'#'; 100]).unwrap();
        assert!(matches!(read_text(&big, 99), Err(ReadError::Other(e)) if e.contains("100 bytes")));
        assert_eq!(read_text(&big, 100).unwrap().len(), 100);
    }

    /// A link to `/dev/zero` would be read without end: it is a device.
    #[test]
    fn a_link_to_a_device_is_refused_and_a_missing_state_file_is_none() {
        let dir = tempfile::tempdir().unwrap();
        let zero = dir.path().join("zero");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        let e = read_state(&zero, "the list", 1 << 20).unwrap_err();
        assert!(
            e.starts_with(&format!(
                "cannot read the list {}: it is not a regular file",
                zero.display()
            )),
            "{e}"
        );
        assert_eq!(read_state(&dir.path().join("none"), "it", 10), Ok(None));
        let under_a_file = dir.path().join("f").join("x");
        std::fs::write(dir.path().join("f"), b"\xff").unwrap();
        assert_eq!(
            read_state(&dir.path().join("f"), "it", 10),
            Ok(Some(vec![0xff]))
        );
        assert_eq!(read_state(&under_a_file, "it", 10), Ok(None));
    }

    #[test]
    fn line_col_counts_characters_and_survives_any_offset() {
        let t = "ab\nçd\n";
        assert_eq!(line_col(t, 0), (1, 1));
        assert_eq!(line_col(t, 3), (2, 1));
        assert_eq!(line_col(t, 5), (2, 2));
        assert_eq!(line_col(t, 4), (2, 1), "inside a character");
        assert_eq!(line_col(t, 999), (3, 1));
    }
}
