//! A package's readme, as its manifest names it (the `wapm` annotation's `readme`: a file of one
//! of its volumes, `metadata` for packages built from a `wasmer.toml`). It is untrusted text:
//! whoever shows it must escape it.

use super::{Checked, catch};

/// The most of a readme that is kept, in bytes; the rest is cut at a character's boundary.
pub const MAX_README: usize = 256 * 1024;

/// The package's readme as text (invalid UTF-8 replaced), at most [`MAX_README`] bytes; `None`
/// when the manifest names none or the file it names is not there.
pub fn readme(checked: &Checked) -> Option<String> {
    let wapm = checked.manifest().wapm().ok().flatten()?;
    let place = wapm.readme?;
    let bytes = catch(|| {
        let volume = checked.container.get_volume(&place.volume)?;
        let (bytes, _) = volume.read_file(place.path.as_str())?;
        Some(bytes.as_slice()[..bytes.len().min(MAX_README + 4)].to_vec())
    })
    .ok()
    .flatten()?;
    Some(cut_readme(String::from_utf8_lossy(&bytes).into_owned()))
}

/// A readme cut to at most [`MAX_README`] bytes, at a character's boundary.
pub fn cut_readme(mut text: String) -> String {
    if text.len() > MAX_README {
        let mut end = MAX_README;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}
