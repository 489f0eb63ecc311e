//! The atoms' digests computed while a file streams past ([`AtomStream`]) against `webc`'s own
//! `Container::validate` as the oracle: on every fixture (the real WebC files of
//! `tests/fixtures/webc`, their conversions to the other format, and containers written here with
//! `webc`'s v2 and v3 writers) fed in chunks of every kind of size, both checks accept or refuse
//! alike; the stream hashes every atom of a v2 and v3 file; and a file whose atom was changed
//! after its index (or whose volume file was) is refused by both.

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine;
use bytes::Bytes;
use webc::PathSegment;
use webc::metadata::Manifest;
use webcpm_formats::container::{
    self, AtomStream, Checked, ContainerError, StreamedAtoms, UnpackLimits,
};
use webcpm_formats::package::{Sha256Digest, WebcVersion};

fn limits(bytes: &Bytes) -> UnpackLimits {
    UnpackLimits::for_size(bytes.len() as u64, UnpackLimits::DEFAULT_RATIO)
}

/// The stream's digests of `bytes` fed in chunks of the sizes `next` gives.
fn stream(bytes: &[u8], mut next: impl FnMut() -> usize) -> Option<StreamedAtoms> {
    let mut stream = AtomStream::new();
    let mut at = 0;
    while at < bytes.len() {
        let end = (at + next().max(1)).min(bytes.len());
        stream.feed(&bytes[at..end]);
        at = end;
    }
    stream.finish()
}

/// Chunkings: the whole file, single bytes (small files), 16 KiB, and sizes from a fixed
/// pseudo-random sequence between 1 byte and 64 KiB.
fn chunkings(bytes: &[u8]) -> Vec<(String, Option<StreamedAtoms>)> {
    let mut out = vec![
        ("whole".to_string(), stream(bytes, || usize::MAX)),
        ("16 KiB".to_string(), stream(bytes, || 16 << 10)),
    ];
    if bytes.len() < 64 << 10 {
        out.push(("1 byte".to_string(), stream(bytes, || 1)));
    }
    for seed in [1u64, 7, 42] {
        let mut x = seed;
        let next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            1 + (x % (64 << 10)) as usize
        };
        out.push((format!("random (seed {seed})"), stream(bytes, next)));
    }
    out
}

fn outcome(result: &Result<Checked, ContainerError>) -> Result<(), String> {
    result.as_ref().map(|_| ()).map_err(|e| e.to_string())
}

/// Both checks on `bytes`: they must agree. Returns whether the file was accepted.
fn agree(name: &str, bytes: &Bytes) -> bool {
    let oracle = container::open_with(bytes.clone(), limits(bytes));
    let atoms = oracle
        .as_ref()
        .map(|c| c.container.atoms().len())
        .unwrap_or(0);
    let current = matches!(container::detect(bytes), Ok(container::Format::Current(_)));
    for (chunking, streamed) in chunkings(bytes) {
        let Some(streamed) = streamed else {
            assert!(
                oracle.is_err() || !current,
                "{name}, {chunking}: the stream hashed nothing of a good v2/v3 file"
            );
            continue;
        };
        let result = container::open_streamed(bytes.clone(), limits(bytes), &streamed);
        let ours = result.as_ref().map(|_| ()).map_err(|e| e.to_string());
        assert_eq!(
            ours.is_ok(),
            oracle.is_ok(),
            "{name}, {chunking}: the streamed check says {ours:?}, validate() says {:?}",
            outcome(&oracle)
        );
        if let Ok((_, from_stream)) = result {
            assert_eq!(
                from_stream, atoms,
                "{name}, {chunking}: every atom's digest comes from the stream"
            );
        }
    }
    oracle.is_ok()
}

fn fixture(name: &str) -> Bytes {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/webc")
        .join(name);
    Bytes::from(std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

fn seg(s: &str) -> PathSegment {
    PathSegment::parse(s).unwrap()
}

fn signature(bytes: &[u8]) -> String {
    let digest = Sha256Digest::of(bytes).0;
    format!("sha256:{}", base64::prelude::BASE64_STANDARD.encode(digest))
}

fn manifest(atoms: &[(&str, &[u8])], fs: bool) -> Manifest {
    let atoms: serde_json::Map<String, serde_json::Value> = atoms
        .iter()
        .map(|(name, data)| {
            let atom = serde_json::json!({
                "kind": "https://webc.org/kind/wasm",
                "signature": signature(data),
            });
            (name.to_string(), atom)
        })
        .collect();
    let mut value = serde_json::json!({ "atoms": atoms });
    if fs {
        value["package"] =
            serde_json::json!({"fs": [{"volume_name": "/data", "mount_path": "/data"}]});
    }
    serde_json::from_value(value).unwrap()
}

/// A v3 container written with `webc`'s writer: `atoms`, and (when `link` is given) a `/data`
/// volume with `a.txt`, `sub/b.txt` and a link `l` to `link`.
fn written_v3(atoms: &[(&str, &[u8])], link: Option<&str>) -> Bytes {
    use webc::v3::write::{DirEntry, Directory, FileEntry, SymlinkEntry, Writer};
    use webc::v3::{ChecksumAlgorithm, SignatureAlgorithm, Timestamps};
    let t = Timestamps::default;
    let file = |data: &'static [u8]| DirEntry::File(FileEntry::borrowed(data, t()));
    let mut writer = Writer::new(ChecksumAlgorithm::Sha256)
        .write_manifest(&manifest(atoms, link.is_some()))
        .unwrap()
        .write_atoms(
            atoms
                .iter()
                .map(|(name, data)| (seg(name), FileEntry::owned(data.to_vec(), t())))
                .collect(),
        )
        .unwrap();
    if let Some(target) = link {
        let sub = Directory::new([(seg("b.txt"), file(b"bee"))].into(), t());
        let mut root = BTreeMap::new();
        root.insert(seg("a.txt"), file(b"ay"));
        root.insert(seg("sub"), DirEntry::Dir(sub));
        let link = SymlinkEntry::owned(target.to_string(), t());
        root.insert(seg("l"), DirEntry::Symlink(link));
        writer
            .write_volume("/data", Directory::new(root, t()))
            .unwrap();
    }
    writer.finish(SignatureAlgorithm::None).unwrap()
}

/// A v2 container written with `webc`'s v2 writer, atoms only.
fn written_v2(atoms: &[(&str, &[u8])]) -> Bytes {
    use webc::v2::write::{FileEntry, Writer};
    use webc::v2::{ChecksumAlgorithm, SignatureAlgorithm};
    Writer::new(ChecksumAlgorithm::Sha256)
        .write_manifest(&manifest(atoms, false))
        .unwrap()
        .write_atoms(
            atoms
                .iter()
                .map(|(name, data)| (seg(name), FileEntry::Owned(data.to_vec().into())))
                .collect(),
        )
        .unwrap()
        .finish(SignatureAlgorithm::None)
        .unwrap()
}

/// A container in the other format, when `webc` can convert it.
fn other_format(bytes: &Bytes) -> Option<Bytes> {
    let checked = container::open(bytes.clone()).ok()?;
    let target = match checked.format {
        container::Format::Current(WebcVersion::V3) => WebcVersion::V2,
        _ => WebcVersion::V3,
    };
    container::convert(bytes, &checked, target).ok()
}

/// Every fixture: the real files, their conversions, and files written here.
fn fixtures() -> Vec<(String, Bytes)> {
    let big: Vec<u8> = (0..300_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
    let wasm = wat::parse_str("(module (func (export \"_start\")))").unwrap();
    let atoms: &[(&str, &[u8])] = &[("main", &wasm), ("big", &big), ("empty", b"")];
    let mut out = vec![
        ("cowsay.webc".to_string(), fixture("cowsay.webc")),
        ("written v3, three atoms".into(), written_v3(atoms, None)),
        (
            "written v3, a volume and a link".into(),
            written_v3(atoms, Some("sub/b.txt")),
        ),
        (
            "written v3, no atoms".into(),
            written_v3(&[], Some("a.txt")),
        ),
        ("written v2, three atoms".into(), written_v2(atoms)),
        (
            "written v2, one atom".into(),
            written_v2(&[("main", &wasm)]),
        ),
    ];
    let converted: Vec<(String, Bytes)> = out
        .iter()
        .filter_map(|(name, bytes)| Some((format!("{name}, converted"), other_format(bytes)?)))
        .collect();
    out.extend(converted);
    out
}

/// Where the largest atom of a container lies in its file.
fn largest_atom(bytes: &Bytes) -> Option<(usize, usize)> {
    let checked = container::open(bytes.clone()).ok()?;
    let atoms = checked.container.atoms();
    let (_, atom) = atoms.iter().max_by_key(|(_, data)| data.len())?;
    let start = atom.as_slice().as_ptr() as usize - bytes.as_ptr() as usize;
    (!atom.is_empty()).then_some((start, atom.len()))
}

#[test]
fn the_streamed_digests_agree_with_validate_on_every_fixture() {
    let fixtures = fixtures();
    assert!(fixtures.len() >= 10, "{} fixtures", fixtures.len());
    for (name, bytes) in &fixtures {
        assert!(agree(name, bytes), "{name} is a good file");
    }
}

#[test]
fn a_file_whose_atom_changed_after_its_index_is_refused_by_both() {
    for (name, bytes) in fixtures() {
        let Some((start, len)) = largest_atom(&bytes) else {
            continue;
        };
        for at in [start, start + len / 2, start + len - 1] {
            let mut changed = bytes.to_vec();
            changed[at] ^= 0x5a;
            let changed = Bytes::from(changed);
            assert!(
                !agree(&format!("{name}, byte {at} changed"), &changed),
                "{name}: a changed atom must be refused"
            );
            let streamed = stream(&changed, || 16 << 10).expect("the layout is unchanged");
            let error = container::open_streamed(changed.clone(), limits(&changed), &streamed)
                .err()
                .unwrap()
                .to_string();
            assert!(error.contains("signature of atom"), "{name}: {error}");
        }
    }
}

#[test]
fn a_changed_volume_file_or_a_cut_file_is_refused_by_both() {
    let atoms: &[(&str, &[u8])] = &[("main", b"\0asm\x01\0\0\0")];
    let bytes = written_v3(atoms, Some("a.txt"));
    // "bee" is the content of `sub/b.txt`, after the atoms.
    let at = bytes.windows(3).rposition(|w| w == b"bee").unwrap();
    let mut changed = bytes.to_vec();
    changed[at] = b'B';
    assert!(!agree("a changed volume file", &Bytes::from(changed)));
    for cut in [bytes.len() / 2, bytes.len() - 1] {
        let short = bytes.slice(..cut);
        assert!(!agree(&format!("cut at {cut}"), &short));
    }
}

#[test]
fn what_the_stream_does_not_read_ahead_is_hashed_by_the_check() {
    // WebC v1 and garbage: no digests, and the check of the finished file decides.
    let v1 = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/webc/cowsay.webc");
    let cowsay = Bytes::from(std::fs::read(v1).unwrap());
    let mut v1 = cowsay.to_vec();
    v1[5..8].copy_from_slice(b"001");
    assert!(stream(&v1, || 4096).is_none());
    assert!(stream(b"\0asm\x01\0\0\0", || usize::MAX).is_none());
    // Digests of another file: the layout differs, each atom is hashed by the check, and the
    // file is judged on its own bytes.
    let other = written_v2(&[("main", b"\0asm\x01\0\0\0")]);
    let foreign = stream(&other, || 4096).unwrap();
    let (_, from_stream) =
        container::open_streamed(cowsay.clone(), limits(&cowsay), &foreign).unwrap();
    assert_eq!(from_stream, 0);
}
