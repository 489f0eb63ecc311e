//! A version's large files kept on disk, not in memory, while `add` checks and converts them.
//!
//! `webc`'s writers build a whole container in a buffer (the package built from a directory,
//! the other format converted from the first); [`Staging::keep`] writes each such buffer to an
//! unnamed file and maps it, so that it is freed before the next one is built. An input file is
//! copied ([`Staging::copy`]) rather than mapped where it lies: a mapping of a file that another
//! process changes or cuts short would change the bytes under the checks (or end the process),
//! and the copy is the registry's own. The files are unnamed: nothing is left behind, whatever
//! happens to the process.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use bytes::Bytes;

/// Buffers smaller than this stay in memory: writing them out would cost more than it frees.
pub(crate) const KEEP_IN_MEMORY: usize = 4 << 20;

/// Where a version's files wait on disk while they are checked.
pub(crate) struct Staging {
    dir: PathBuf,
}

impl Staging {
    /// Stages in the registry's `tmp/` when it is there, else in the nearest directory above
    /// the root that exists (the same disk, most likely; the files are unnamed, so an `add`
    /// that fails leaves nothing there), else in the system's temporary directory.
    pub(crate) fn for_root(root: &Path) -> Staging {
        let tmp = root.join("tmp");
        let dir = std::iter::once(tmp.as_path())
            .chain(root.ancestors())
            .map(|dir| match dir.as_os_str().is_empty() {
                true => Path::new("."),
                false => dir,
            })
            .find(|dir| dir.is_dir())
            .map_or_else(std::env::temp_dir, Path::to_path_buf);
        Staging { dir }
    }

    /// `bytes` on disk, mapped; the buffer is freed when the caller drops it.
    pub(crate) fn keep(&self, bytes: Bytes) -> io::Result<Bytes> {
        if bytes.len() < KEEP_IN_MEMORY {
            return Ok(bytes);
        }
        let mut file = tempfile::tempfile_in(&self.dir)?;
        io::Write::write_all(&mut file, &bytes)?;
        map(file)
    }

    /// The directory the files are in, to name in errors.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// A private copy of the open file `input`, mapped (copied in the kernel where it can be).
    pub(crate) fn copy(&self, mut input: File) -> io::Result<Bytes> {
        if input.metadata()?.len() < KEEP_IN_MEMORY as u64 {
            let mut bytes = Vec::new();
            io::Read::read_to_end(&mut input, &mut bytes)?;
            return Ok(Bytes::from(bytes));
        }
        let mut file = tempfile::tempfile_in(&self.dir)?;
        io::copy(&mut input, &mut file)?;
        map(file)
    }
}

fn map(file: File) -> io::Result<Bytes> {
    // SAFETY: the file is unnamed and only this process holds it, so no one else can change
    // or shorten it while it is mapped.
    let mapped = unsafe { memmap2::Mmap::map(&file)? };
    Ok(Bytes::from_owner(mapped))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_and_copied_bytes_are_the_same_bytes_and_leave_no_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("tmp")).unwrap();
        let staging = Staging::for_root(dir.path());
        let big: Bytes = (0..KEEP_IN_MEMORY + 12_345)
            .map(|i| (i % 251) as u8)
            .collect();
        assert_eq!(staging.keep(big.clone()).unwrap(), big);
        let input = dir.path().join("input.webc");
        std::fs::write(&input, &big).unwrap();
        assert_eq!(staging.copy(File::open(&input).unwrap()).unwrap(), big);
        std::fs::write(&input, b"small").unwrap();
        assert_eq!(
            staging.copy(File::open(&input).unwrap()).unwrap(),
            Bytes::from_static(b"small")
        );
        assert_eq!(
            std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
            0
        );
    }

    #[test]
    fn a_root_not_made_yet_is_not_made_by_staging() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("registry");
        let staging = Staging::for_root(&root);
        assert_eq!(staging.dir(), dir.path());
        let big = Bytes::from(vec![7u8; KEEP_IN_MEMORY]);
        assert_eq!(staging.keep(big.clone()).unwrap(), big);
        assert!(!root.exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
