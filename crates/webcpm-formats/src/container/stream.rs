//! A container's atoms hashed while its bytes stream past, so that the check after a download
//! does not read and hash them a second time.
//!
//! WebC v2 and v3 put the index right after the magic bytes, and in the atoms section a header
//! (every atom's name and where its bytes lie) before the bytes. Only the framing is read here:
//! the index section's length and, once the `webc` crate has parsed the index, the atoms
//! section's frame and its header's length, to know when the header has wholly arrived. The
//! `webc` crate then parses the header, and from there every byte of an atom goes into that
//! atom's SHA-256 as it passes.
//!
//! Nothing is accepted on these digests alone: [`super::open_streamed`] parses the finished file
//! with `webc` as always, finds each atom at the offset the stream hashed, and compares the
//! digest with the atom's signature in the manifest, as `Container::validate` does. An atom the
//! stream did not hash (an unusual layout, a prefix too large to hold) is hashed there instead.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};
use webc::v2::read as v2;
use webc::v3::read as v3;

/// The most bytes held before the atoms' header is complete; past it, nothing is hashed ahead.
const MAX_PREFIX: usize = 16 << 20;

/// The bytes of the magic number and version, then the index section's tag and length.
const INDEX_DATA: usize = 8 + 1 + 8;

/// Hashes the atoms of a WebC file fed to it in order, from its first byte.
#[derive(Default)]
pub struct AtomStream {
    /// Bytes fed so far.
    at: u64,
    state: State,
}

enum State {
    /// Everything fed so far, until the atoms' layout is known; `need` is the length the
    /// prefix must reach before it is read again.
    Prefix { bytes: Vec<u8>, need: usize },
    /// The atoms by offset, none overlapping; `done` are those wholly fed.
    Hashing { atoms: Vec<Running>, done: usize },
    /// A file this does not read ahead: the check after the download hashes its atoms.
    Off,
}

impl Default for State {
    fn default() -> Self {
        State::Prefix {
            bytes: Vec::new(),
            need: INDEX_DATA,
        }
    }
}

struct Running {
    name: String,
    start: u64,
    end: u64,
    hasher: Sha256,
}

/// What reading the prefix found.
enum Layout {
    /// The prefix must be at least this long.
    Need(usize),
    /// The atoms, by offset.
    Atoms(Vec<Running>),
    Unsupported,
}

/// The atoms' digests the stream computed, with where each lies in the file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamedAtoms {
    atoms: BTreeMap<String, (u64, u64, [u8; 32])>,
}

impl StreamedAtoms {
    /// The digest of atom `name` if the stream hashed exactly `len` bytes at `start`.
    pub(crate) fn digest(&self, name: &str, start: u64, len: u64) -> Option<[u8; 32]> {
        match self.atoms.get(name) {
            Some(&(s, l, digest)) if s == start && l == len => Some(digest),
            _ => None,
        }
    }

    /// How many atoms were hashed.
    pub fn len(&self) -> usize {
        self.atoms.len()
    }

    pub fn is_empty(&self) -> bool {
        self.atoms.is_empty()
    }
}

impl AtomStream {
    pub fn new() -> AtomStream {
        AtomStream::default()
    }

    /// The next bytes of the file.
    pub fn feed(&mut self, chunk: &[u8]) {
        let at = self.at;
        self.at += chunk.len() as u64;
        match &mut self.state {
            State::Prefix { bytes, need } => {
                bytes.extend_from_slice(chunk);
                if bytes.len() < *need {
                    return;
                }
                match layout(bytes) {
                    Layout::Need(more) if more <= MAX_PREFIX => *need = more,
                    Layout::Need(_) | Layout::Unsupported => self.state = State::Off,
                    Layout::Atoms(mut atoms) => {
                        let mut done = 0;
                        hash(&mut atoms, &mut done, 0, bytes);
                        self.state = State::Hashing { atoms, done };
                    }
                }
            }
            State::Hashing { atoms, done } => hash(atoms, done, at, chunk),
            State::Off => {}
        }
    }

    /// The digests, if the layout was read and every atom was wholly fed.
    pub fn finish(self) -> Option<StreamedAtoms> {
        let State::Hashing { atoms, .. } = self.state else {
            return None;
        };
        if atoms.iter().any(|a| a.end > self.at) {
            return None;
        }
        let atoms = atoms
            .into_iter()
            .map(|a| {
                (
                    a.name,
                    (a.start, a.end - a.start, a.hasher.finalize().into()),
                )
            })
            .collect();
        Some(StreamedAtoms { atoms })
    }
}

/// Feeds `bytes`, found at offset `at` of the file, to the atoms they belong to.
fn hash(atoms: &mut [Running], done: &mut usize, at: u64, bytes: &[u8]) {
    let end = at + bytes.len() as u64;
    while atoms.get(*done).is_some_and(|a| a.end <= at) {
        *done += 1;
    }
    for atom in atoms.iter_mut().skip(*done) {
        if atom.start >= end {
            break;
        }
        let (from, to) = (atom.start.max(at), atom.end.min(end));
        if from < to {
            atom.hasher
                .update(&bytes[(from - at) as usize..(to - at) as usize]);
        }
    }
}

fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    let raw = bytes.get(at..at.checked_add(8)?)?;
    Some(u64::from_le_bytes(raw.try_into().ok()?))
}

/// Reads as much of the layout as `prefix` holds: the index, then the atoms section's frame and
/// header.
fn layout(prefix: &[u8]) -> Layout {
    let v3 = match webc::detect(prefix) {
        Ok(webc::Version::V2) => false,
        Ok(webc::Version::V3) => true,
        _ => return Layout::Unsupported,
    };
    let Some(index_len) = u64_at(prefix, 9).and_then(|n| usize::try_from(n).ok()) else {
        return Layout::Unsupported;
    };
    let Some(index_end) = INDEX_DATA.checked_add(index_len) else {
        return Layout::Unsupported;
    };
    let Some(index) = prefix.get(INDEX_DATA..index_end) else {
        return Layout::Need(index_end);
    };
    let span = match atoms_span(v3, prefix[8], index) {
        Some(span) => span,
        None => return Layout::Unsupported,
    };
    // The atoms section: a tag, (v3) the section's hash, its length; then its data, which
    // starts with the header's length.
    let frame = if v3 { 1 + 32 + 8 } else { 1 + 8 };
    let Some(header_len_at) = span.start.checked_add(frame) else {
        return Layout::Unsupported;
    };
    let Some(header_len) = u64_at(prefix, header_len_at) else {
        return Layout::Need(header_len_at + 8);
    };
    // The header, and the data's length after it.
    let header_end = usize::try_from(header_len)
        .ok()
        .and_then(|n| (header_len_at + 16).checked_add(n));
    match header_end {
        Some(end) if end <= prefix.len() => atoms(v3, prefix, span, frame, end),
        Some(end) => Layout::Need(end),
        None => Layout::Unsupported,
    }
}

/// Where the index puts the atoms section.
fn atoms_span(v3: bool, tag: u8, index: &[u8]) -> Option<webc::v3::Span> {
    let data = shared_buffer::OwnedBuffer::from(index);
    if v3 {
        let index = v3::Section::parse(tag, None, data).ok()?;
        Some(index.as_index()?.index().ok()?.atoms.span)
    } else {
        let index = v2::Section::parse(tag, data).ok()?;
        let span = index.as_index()?.index().ok()?.atoms.span;
        Some(webc::v3::Span::new(span.start, span.len))
    }
}

/// The atoms of the section at `span`, whose header ends before `header_end`: `webc` parses the
/// section from a buffer of its full length in which only the frame and header are filled in.
/// The rest is zeros that are never read (atoms are sliced, not read), in memory allocated
/// zeroed, which the kernel only provides when touched.
fn atoms(v3: bool, prefix: &[u8], span: webc::v3::Span, frame: usize, header_end: usize) -> Layout {
    let (Some(tag), Some(data_len)) = (
        prefix.get(span.start),
        u64_at(prefix, span.start + frame - 8),
    ) else {
        return Layout::Unsupported;
    };
    let Some(data_len) = usize::try_from(data_len)
        .ok()
        .filter(|&n| frame.checked_add(n).is_some_and(|all| all <= span.len))
    else {
        return Layout::Unsupported;
    };
    let data_start = span.start + frame;
    let known = header_end - data_start;
    if known > data_len {
        return Layout::Unsupported;
    }
    let Some(mut data) = zeroed(data_len) else {
        return Layout::Unsupported;
    };
    data[..known].copy_from_slice(&prefix[data_start..header_end]);
    let data = shared_buffer::OwnedBuffer::from(data);
    let found: Option<Vec<(String, usize, usize)>> = if v3 {
        let mut hash = [0u8; 32];
        hash.copy_from_slice(&prefix[span.start + 1..span.start + 33]);
        match v3::Section::parse(*tag, Some(hash), data) {
            Ok(v3::Section::Atoms(section)) => section
                .iter_with_offsets()
                .map(|r| {
                    r.ok()
                        .map(|(name, _, _, at)| (name.to_string(), at.start, at.len))
                })
                .collect(),
            _ => None,
        }
    } else {
        match v2::Section::parse(*tag, data) {
            Ok(v2::Section::Atoms(section)) => section
                .iter_with_offsets()
                .map(|r| {
                    r.ok()
                        .map(|(name, _, at)| (name.to_string(), at.start, at.len))
                })
                .collect(),
            _ => None,
        }
    };
    let Some(found) = found else {
        return Layout::Unsupported;
    };
    running(found, span.start, header_end)
}

/// `len` zero bytes, or `None` when the allocator refuses them: a length the file claims must not
/// abort the process. Memory allocated zeroed is only provided by the kernel where it is touched.
fn zeroed(len: usize) -> Option<Vec<u8>> {
    if len == 0 {
        return Some(Vec::new());
    }
    let layout = std::alloc::Layout::array::<u8>(len).ok()?;
    // SAFETY: `layout` has a non-zero size. A non-null pointer comes from the global allocator
    // with exactly this layout and holds `len` initialised (zero) bytes; the Vec owns it from
    // here, with the same layout for its capacity.
    unsafe {
        let ptr = std::alloc::alloc_zeroed(layout);
        (!ptr.is_null()).then(|| Vec::from_raw_parts(ptr, len, len))
    }
}

/// The atoms found in the section that starts at `section`, by offset in the file; none may
/// overlap another or lie in the header.
fn running(found: Vec<(String, usize, usize)>, section: usize, header_end: usize) -> Layout {
    let mut atoms: Vec<Running> = found
        .into_iter()
        .map(|(name, start, len)| Running {
            name,
            start: (section + start) as u64,
            end: (section + start + len) as u64,
            hasher: Sha256::new(),
        })
        .collect();
    atoms.sort_by_key(|a| (a.start, a.end));
    let apart = atoms.windows(2).all(|w| w[0].end <= w[1].start);
    let after_header = atoms.first().is_none_or(|a| a.start >= header_end as u64);
    let mut names: Vec<&str> = atoms.iter().map(|a| a.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    if apart && after_header && names.len() == atoms.len() {
        Layout::Atoms(atoms)
    } else {
        Layout::Unsupported
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_length_no_allocator_can_give_is_refused_not_fatal() {
        assert_eq!(zeroed(0), Some(Vec::new()));
        assert_eq!(zeroed(3), Some(vec![0, 0, 0]));
        assert_eq!(zeroed(isize::MAX as usize), None);
    }
}
