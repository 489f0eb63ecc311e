//! The signature of a shared artifact: the fleet's ed25519 key over what the artifact claims to
//! be, so that a client loads native code only when the key it pinned (`compile.shared_key`)
//! vouches for exactly these bytes as the code of exactly this atom for exactly this engine.
//!
//! The signed message has fixed-width fields after a domain-separation prefix, so no other
//! message webcpm signs (the rollout policy, key endorsements) reads as one of these, and no two
//! triples give the same bytes:
//!
//! ```text
//! "webcpm compiled artifact v1\n"   28 bytes
//! engine compatibility hash         16 bytes (its 32 hex digits, decoded)
//! atom SHA-256                      32 bytes
//! artifact SHA-256                  32 bytes
//! ```
//!
//! The signature (hex, 128 digits) and the signer's public key (hex, 64 digits) travel in the
//! manifest's annotations [`SIGNATURE_KEY`] and [`SIGNER_KEY`]. Keys are those of
//! `webcpm-registry keygen` ([`crate::fleet::document`]): a hex secret seed in a file for the
//! pushers, its hex public key for everyone else.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

use crate::fleet::document;
use crate::package::Sha256Digest;

/// The annotation that holds the signature, hex.
pub const SIGNATURE_KEY: &str = "dev.webcpm.signature";
/// The annotation that holds the signer's public key, hex.
pub const SIGNER_KEY: &str = "dev.webcpm.signer";

/// What every signed message starts with.
const DOMAIN: &[u8; 28] = b"webcpm compiled artifact v1\n";

/// The length of a signed message.
const MESSAGE_LEN: usize = DOMAIN.len() + 16 + 32 + 32;

/// What a signature vouches for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claim {
    engine: [u8; 16],
    atom: Sha256Digest,
    artifact: Sha256Digest,
}

/// Why a shared artifact's signature is not accepted, or a key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    #[error("the engine hash `{0}` is not 32 hex digits")]
    Engine(String),
    #[error("it is not signed (no {SIGNATURE_KEY} or {SIGNER_KEY} annotation)")]
    Unsigned,
    #[error(
        "it is signed by key {0}, not by the pinned compile.shared_key (another key, or a stranger's)"
    )]
    OtherSigner(String),
    #[error(
        "its signature does not cover this engine, atom and artifact (tampered, or signed over other bytes)"
    )]
    BadSignature,
    #[error(
        "cannot read the signing key file {path} (compile.shared_signing_key): {source}; check the path and its permissions"
    )]
    KeyFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the signing key file {path} (compile.shared_signing_key) is not a key that `webcpm-registry keygen` writes: {reason}"
    )]
    BadKeyFile { path: PathBuf, reason: String },
}

impl Claim {
    /// The claim that `artifact` is the code of `atom` for the engine whose compatibility hash
    /// is `engine` (32 hex digits).
    pub fn new(
        engine: &str,
        atom: &Sha256Digest,
        artifact: &Sha256Digest,
    ) -> Result<Claim, SignatureError> {
        let bad = || SignatureError::Engine(engine.to_string());
        let engine: [u8; 16] = hex::decode(engine)
            .map_err(|_| bad())?
            .try_into()
            .map_err(|_| bad())?;
        Ok(Claim {
            engine,
            atom: *atom,
            artifact: *artifact,
        })
    }

    /// The bytes that are signed.
    pub fn message(&self) -> [u8; MESSAGE_LEN] {
        let mut out = [0u8; MESSAGE_LEN];
        let fields: [&[u8]; 4] = [DOMAIN, &self.engine, &self.atom.0, &self.artifact.0];
        let mut at = 0;
        for field in fields {
            out[at..at + field.len()].copy_from_slice(field);
            at += field.len();
        }
        out
    }

    /// The annotations that carry `key`'s signature of this claim.
    pub fn sign(&self, key: &SigningKey) -> BTreeMap<String, String> {
        BTreeMap::from([
            (
                SIGNATURE_KEY.to_string(),
                hex::encode(key.sign(&self.message()).to_bytes()),
            ),
            (
                SIGNER_KEY.to_string(),
                document::key_hex(&key.verifying_key()),
            ),
        ])
    }

    /// Checks that `annotations` carry a signature of this claim by `pinned`.
    pub fn verify(
        &self,
        annotations: &BTreeMap<String, String>,
        pinned: &VerifyingKey,
    ) -> Result<(), SignatureError> {
        let (Some(signature), Some(signer)) =
            (annotations.get(SIGNATURE_KEY), annotations.get(SIGNER_KEY))
        else {
            return Err(SignatureError::Unsigned);
        };
        let signer_key = document::parse_key(signer)
            .map_err(|_| SignatureError::OtherSigner(signer.chars().take(64).collect()))?;
        if signer_key != *pinned {
            return Err(SignatureError::OtherSigner(signer.clone()));
        }
        let bytes: [u8; 64] = hex::decode(signature)
            .map_err(|_| SignatureError::BadSignature)?
            .try_into()
            .map_err(|_| SignatureError::BadSignature)?;
        pinned
            .verify_strict(&self.message(), &Signature::from_bytes(&bytes))
            .map_err(|_| SignatureError::BadSignature)
    }
}

/// Reads a pusher's signing key: a file as `webcpm-registry keygen --root DIR` writes it
/// (`DIR/policy-key`, a hex secret seed).
pub fn read_signing_key(path: &Path) -> Result<SigningKey, SignatureError> {
    let text = std::fs::read_to_string(path).map_err(|source| SignatureError::KeyFile {
        path: path.to_path_buf(),
        source,
    })?;
    document::parse_secret(&text).map_err(|e| SignatureError::BadKeyFile {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENGINE: &str = "00112233445566778899aabbccddeeff";

    fn claim(atom: u8, artifact: u8) -> Claim {
        Claim::new(
            ENGINE,
            &Sha256Digest([atom; 32]),
            &Sha256Digest([artifact; 32]),
        )
        .unwrap()
    }

    #[test]
    fn the_message_is_fixed_width_after_its_prefix() {
        let m = claim(1, 2).message();
        assert_eq!(m.len(), 108);
        assert!(m.starts_with(b"webcpm compiled artifact v1\n"));
        assert_eq!(&m[28..44], &hex::decode(ENGINE).unwrap()[..]);
        assert_eq!(&m[44..76], &[1u8; 32]);
        assert_eq!(&m[76..], &[2u8; 32]);
        assert!(Claim::new("abc", &Sha256Digest([0; 32]), &Sha256Digest([0; 32])).is_err());
        assert!(
            Claim::new(
                &"zz".repeat(16),
                &Sha256Digest([0; 32]),
                &Sha256Digest([0; 32])
            )
            .is_err()
        );
    }

    #[test]
    fn only_the_pinned_key_over_the_same_claim_verifies() {
        let fleet = document::generate().unwrap();
        let pinned = fleet.verifying_key();
        let signed = claim(1, 2).sign(&fleet);
        claim(1, 2).verify(&signed, &pinned).unwrap();

        // Another atom, another artifact or another engine: the same signature is worth nothing.
        for other in [
            claim(9, 2),
            claim(1, 9),
            Claim::new(
                &"ff".repeat(16),
                &Sha256Digest([1; 32]),
                &Sha256Digest([2; 32]),
            )
            .unwrap(),
        ] {
            assert!(matches!(
                other.verify(&signed, &pinned),
                Err(SignatureError::BadSignature)
            ));
        }
        assert!(matches!(
            claim(1, 2).verify(&BTreeMap::new(), &pinned),
            Err(SignatureError::Unsigned)
        ));

        // A stranger's signature, whether it names the stranger or the pinned key as signer.
        let stranger = document::generate().unwrap();
        let theirs = claim(1, 2).sign(&stranger);
        assert!(matches!(
            claim(1, 2).verify(&theirs, &pinned),
            Err(SignatureError::OtherSigner(_))
        ));
        let mut forged = theirs.clone();
        forged.insert(SIGNER_KEY.into(), document::key_hex(&pinned));
        assert!(matches!(
            claim(1, 2).verify(&forged, &pinned),
            Err(SignatureError::BadSignature)
        ));
        let mut garbled = signed.clone();
        garbled.insert(SIGNATURE_KEY.into(), "not hex".into());
        assert!(matches!(
            claim(1, 2).verify(&garbled, &pinned),
            Err(SignatureError::BadSignature)
        ));
    }

    #[test]
    fn signing_keys_are_read_from_keygen_files() {
        let dir = tempfile::tempdir().unwrap();
        let key = document::generate().unwrap();
        let path = dir.path().join("policy-key");
        std::fs::write(&path, format!("{}\n", hex::encode(key.to_bytes()))).unwrap();
        assert_eq!(read_signing_key(&path).unwrap().to_bytes(), key.to_bytes());
        std::fs::write(&path, "abc").unwrap();
        let err = read_signing_key(&path).unwrap_err().to_string();
        assert!(err.contains("compile.shared_signing_key"), "{err}");
        let err = read_signing_key(&dir.path().join("missing")).unwrap_err();
        assert!(matches!(err, SignatureError::KeyFile { .. }));
    }
}
