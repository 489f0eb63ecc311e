//! The registry's rollout policy as it travels: a [`PolicyDocument`] serialized canonically
//! (serde_json of a struct with a fixed field order, no extra whitespace), signed with ed25519,
//! and wrapped in an [`Envelope`] with the signing key, the root key's [`Endorsement`] of that
//! key, and the root's list of revoked keys.
//!
//! ```text
//! {"policy": {"policy_version": 12, "v3_percent": 30, "packages": {"ns/app": {"webc": "v2"}},
//!             "rolled_back": false, "halted": false, "issued_at": 1767000000,
//!             "expires_at": 1767604800},
//!  "key": "<hex public key>", "signature": "<hex signature of the canonical policy>",
//!  "endorsement": {"expires_at": 1774776000,
//!                  "signature": "<root's signature of `webcpm-policy-key:<hex key>:<expires_at>`>"},
//!  "revocations": {"list": {"version": 2, "issued_at": 1767000000, "keys": ["<hex key>"]},
//!                  "signature": "<root's signature of the canonical list>"}}
//! ```
//!
//! Clients pin the **root** key. The registry signs with a **signing key** that the root
//! endorses until a time; a new signing key (a rotation) is endorsed the same way, so clients
//! never re-pin. A client accepts an envelope when:
//! - its key is the root itself, or is endorsed by the root, the endorsement has not expired,
//!   and the key is not on the newest revocation list the client has seen (lists are signed by
//!   the root and only ever replaced by a higher `version`);
//! - the signature over the canonical bytes of the policy checks with that key.
//!
//! Both the registry (signing) and the client (verifying) use this module, and nothing else.

use std::collections::BTreeMap;

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};

use crate::package::PackageName;
use crate::policy::{PackageRule, RegistryRollout};

/// What a key endorsement signs: this prefix, the key in hex, `:` and its expiry.
const ENDORSE: &str = "webcpm-policy-key:";
/// What a revocation list's signature covers: this prefix and the list's canonical bytes.
const REVOKE: &str = "webcpm-policy-revocations:";

/// The policy, field order fixed: its serde_json bytes are what is signed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PolicyDocument {
    pub policy_version: u64,
    pub v3_percent: u8,
    /// Per-package rules by `ns/name` (a `BTreeMap`, so sorted: canonical).
    pub packages: BTreeMap<String, PackageRule>,
    pub rolled_back: bool,
    pub halted: bool,
    /// Seconds since the Unix epoch.
    pub issued_at: i64,
    pub expires_at: i64,
}

/// A signed policy, as served.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Envelope {
    pub policy: PolicyDocument,
    /// The signing key, hex.
    pub key: String,
    /// The ed25519 signature of the policy's canonical bytes, hex.
    pub signature: String,
    /// The root's endorsement of `key`, when `key` is not the root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endorsement: Option<Endorsement>,
    /// The root's list of revoked signing keys, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocations: Option<SignedRevocations>,
}

/// The root key's word that a signing key may sign policies until `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Endorsement {
    /// Seconds since the Unix epoch.
    pub expires_at: i64,
    /// The root's signature of `webcpm-policy-key:<hex key>:<expires_at>`, hex.
    pub signature: String,
}

/// The signing keys the root has withdrawn. A higher `version` replaces a lower one.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Revocations {
    pub version: u64,
    pub issued_at: i64,
    /// Public keys, hex, sorted.
    pub keys: Vec<String>,
}

/// A revocation list with the root's signature.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SignedRevocations {
    pub list: Revocations,
    pub signature: String,
}

/// Why a key or a signed policy was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    #[error(
        "the policy key `{0}` is not an ed25519 public key in hex (64 digits); copy `public_key` from `webcpm registry keygen --json`"
    )]
    BadKey(String),
    #[error("the signing key file is damaged: {0}; restore it from a backup or create a new key")]
    BadSecret(String),
    #[error(
        "the policy's signature does not match its content (tampered, or signed by another key); the last good policy stays in force"
    )]
    BadSignature,
    #[error(
        "the policy is signed by key {0}, which is neither the pinned key nor endorsed by it; pin the registry's root key (`rollout.policy_key`, from `webcpm registry keygen`)"
    )]
    UnknownKey(String),
    #[error(
        "the policy is signed by key {key}, whose endorsement expired at {expires_at} (Unix time); the registry's operator must rotate its signing key (`webcpm registry keygen --rotate`)"
    )]
    EndorsementExpired { key: String, expires_at: i64 },
    #[error(
        "the policy is signed by key {0}, which the root key has revoked; the registry must sign with a new key (`webcpm registry keygen --rotate`)"
    )]
    Revoked(String),
    #[error("the policy holds a bad package name `{0}`")]
    BadPackage(String),
}

/// The canonical bytes of a policy: what is signed.
pub fn canonical(policy: &PolicyDocument) -> Vec<u8> {
    serde_json::to_vec(policy).expect("plain data serializes")
}

/// Parses a hex public key.
pub fn parse_key(text: &str) -> Result<VerifyingKey, DocumentError> {
    let bad = || DocumentError::BadKey(text.to_string());
    let bytes: [u8; 32] = hex::decode(text.trim())
        .map_err(|_| bad())?
        .try_into()
        .map_err(|_| bad())?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| bad())
}

/// A new signing key from the operating system's random source.
pub fn generate() -> Result<SigningKey, getrandom::Error> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed)?;
    Ok(SigningKey::from_bytes(&seed))
}

/// A signing key from its hex seed (the registry's key file).
pub fn parse_secret(text: &str) -> Result<SigningKey, DocumentError> {
    let seed: [u8; 32] = hex::decode(text.trim())
        .map_err(|e| DocumentError::BadSecret(e.to_string()))?
        .try_into()
        .map_err(|_| DocumentError::BadSecret("not 32 bytes".into()))?;
    Ok(SigningKey::from_bytes(&seed))
}

pub fn key_hex(key: &VerifyingKey) -> String {
    hex::encode(key.as_bytes())
}

fn endorsement_message(key: &VerifyingKey, expires_at: i64) -> String {
    format!("{ENDORSE}{}:{expires_at}", key_hex(key))
}

/// The root's endorsement of a signing key until `expires_at`.
pub fn endorse(root: &SigningKey, key: &VerifyingKey, expires_at: i64) -> Endorsement {
    let message = endorsement_message(key, expires_at);
    Endorsement {
        expires_at,
        signature: hex::encode(root.sign(message.as_bytes()).to_bytes()),
    }
}

fn revocation_message(list: &Revocations) -> Vec<u8> {
    let mut message = REVOKE.as_bytes().to_vec();
    message.extend(serde_json::to_vec(list).expect("plain data serializes"));
    message
}

/// The root's signature on a revocation list.
pub fn sign_revocations(root: &SigningKey, mut list: Revocations) -> SignedRevocations {
    list.keys.sort();
    list.keys.dedup();
    let signature = hex::encode(root.sign(&revocation_message(&list)).to_bytes());
    SignedRevocations { list, signature }
}

/// The list, when the root signed it.
pub fn verify_revocations(
    signed: &SignedRevocations,
    root: &VerifyingKey,
) -> Result<(), DocumentError> {
    root.verify(
        &revocation_message(&signed.list),
        &signature(&signed.signature)?,
    )
    .map_err(|_| DocumentError::BadSignature)
}

/// The newer of a list already held and the one an envelope carries (when the root signed it).
pub fn newest_revocations(
    held: Option<&Revocations>,
    envelope: &Envelope,
    root: &VerifyingKey,
) -> Option<Revocations> {
    let offered = envelope
        .revocations
        .as_ref()
        .filter(|r| verify_revocations(r, root).is_ok())
        .map(|r| &r.list);
    match (held, offered) {
        (Some(h), Some(o)) if o.version > h.version => Some(o.clone()),
        (Some(h), _) => Some(h.clone()),
        (None, o) => o.cloned(),
    }
}

/// Signs a policy.
pub fn sign(
    key: &SigningKey,
    policy: PolicyDocument,
    endorsement: Option<Endorsement>,
    revocations: Option<SignedRevocations>,
) -> Envelope {
    let signature = hex::encode(key.sign(&canonical(&policy)).to_bytes());
    Envelope {
        policy,
        key: key_hex(&key.verifying_key()),
        signature,
        endorsement,
        revocations,
    }
}

fn signature(text: &str) -> Result<Signature, DocumentError> {
    let bytes: [u8; 64] = hex::decode(text)
        .map_err(|_| DocumentError::BadSignature)?
        .try_into()
        .map_err(|_| DocumentError::BadSignature)?;
    Ok(Signature::from_bytes(&bytes))
}

/// Checks the envelope against the pinned root key at `now`, with the revocation list
/// `revoked` (the newest the caller knows, see [`newest_revocations`]): the key is the root, or
/// the root endorses it until after `now` and has not revoked it; and the signature covers the
/// policy as it is.
pub fn verify(
    envelope: &Envelope,
    pinned: &VerifyingKey,
    now: i64,
    revoked: Option<&Revocations>,
) -> Result<(), DocumentError> {
    let key = parse_key(&envelope.key)?;
    if key != *pinned {
        let endorsement = envelope
            .endorsement
            .as_ref()
            .filter(|e| {
                let message = endorsement_message(&key, e.expires_at);
                signature(&e.signature).is_ok_and(|s| pinned.verify(message.as_bytes(), &s).is_ok())
            })
            .ok_or_else(|| DocumentError::UnknownKey(envelope.key.clone()))?;
        let hex = key_hex(&key);
        if revoked.is_some_and(|r| r.keys.contains(&hex)) {
            return Err(DocumentError::Revoked(hex));
        }
        if now >= endorsement.expires_at {
            return Err(DocumentError::EndorsementExpired {
                key: hex,
                expires_at: endorsement.expires_at,
            });
        }
    }
    key.verify(
        &canonical(&envelope.policy),
        &signature(&envelope.signature)?,
    )
    .map_err(|_| DocumentError::BadSignature)
}

/// Seconds since the Unix epoch: the unit of a document's times.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl PolicyDocument {
    /// The policy as the format policy's registry layer; `expired` when past `expires_at`.
    pub fn rollout(&self, now: i64) -> Result<RegistryRollout, DocumentError> {
        let mut packages = BTreeMap::new();
        for (name, rule) in &self.packages {
            let name: PackageName = name
                .parse()
                .map_err(|_| DocumentError::BadPackage(name.clone()))?;
            packages.insert(name, *rule);
        }
        Ok(RegistryRollout {
            version: self.policy_version,
            v3_percent: self.v3_percent.min(100),
            packages,
            rolled_back: self.rolled_back,
            halted: self.halted,
            expired: now >= self.expires_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(version: u64) -> PolicyDocument {
        PolicyDocument {
            policy_version: version,
            v3_percent: 10,
            packages: BTreeMap::new(),
            rolled_back: false,
            halted: false,
            issued_at: 1,
            expires_at: 100,
        }
    }

    #[test]
    fn signed_policies_verify_and_tampered_ones_do_not() {
        let key = generate().unwrap();
        let pinned = key.verifying_key();
        let envelope = sign(&key, doc(1), None, None);
        verify(&envelope, &pinned, 0, None).unwrap();
        let text = serde_json::to_string(&envelope).unwrap();
        let back: Envelope = serde_json::from_str(&text).unwrap();
        verify(&back, &pinned, 0, None).unwrap();
        let mut tampered = envelope.clone();
        tampered.policy.v3_percent = 100;
        assert!(matches!(
            verify(&tampered, &pinned, 0, None),
            Err(DocumentError::BadSignature)
        ));
        let other = generate().unwrap();
        assert!(matches!(
            verify(&sign(&other, doc(1), None, None), &pinned, 0, None),
            Err(DocumentError::UnknownKey(_))
        ));
    }

    #[test]
    fn an_endorsed_key_is_accepted_until_its_endorsement_expires_or_is_revoked() {
        let root = generate().unwrap();
        let new = generate().unwrap();
        let endorsement = endorse(&root, &new.verifying_key(), 1000);
        let envelope = sign(&new, doc(2), Some(endorsement.clone()), None);
        verify(&envelope, &root.verifying_key(), 999, None).unwrap();
        verify(&envelope, &new.verifying_key(), 5000, None).unwrap();
        assert!(matches!(
            verify(&envelope, &root.verifying_key(), 1000, None),
            Err(DocumentError::EndorsementExpired { .. })
        ));
        // A later expiry than the root signed is a forgery.
        let mut stretched = envelope.clone();
        stretched.endorsement.as_mut().unwrap().expires_at = 9999;
        assert!(matches!(
            verify(&stretched, &root.verifying_key(), 999, None),
            Err(DocumentError::UnknownKey(_))
        ));
        // An endorsement by someone else is worth nothing.
        let stranger = generate().unwrap();
        let forged = sign(
            &new,
            doc(2),
            Some(endorse(&stranger, &new.verifying_key(), 1000)),
            None,
        );
        assert!(verify(&forged, &root.verifying_key(), 0, None).is_err());
        // Revoked by a list the root signed; a list by anyone else is ignored.
        let list = Revocations {
            version: 1,
            issued_at: 0,
            keys: vec![key_hex(&new.verifying_key())],
        };
        let signed = sign_revocations(&root, list.clone());
        let carried = sign(&new, doc(3), Some(endorsement.clone()), Some(signed));
        let newest = newest_revocations(None, &carried, &root.verifying_key());
        assert_eq!(newest.as_ref(), Some(&list));
        assert!(matches!(
            verify(&carried, &root.verifying_key(), 0, newest.as_ref()),
            Err(DocumentError::Revoked(_))
        ));
        let bogus = sign(
            &new,
            doc(3),
            Some(endorsement),
            Some(sign_revocations(&stranger, list.clone())),
        );
        assert_eq!(
            newest_revocations(None, &bogus, &root.verifying_key()),
            None
        );
        // An older list never replaces a newer one.
        let newer = Revocations {
            version: 2,
            ..list.clone()
        };
        assert_eq!(
            newest_revocations(Some(&newer), &carried, &root.verifying_key()),
            Some(newer)
        );
        assert!(parse_key("zz").is_err());
        assert_eq!(
            parse_key(&key_hex(&new.verifying_key())).unwrap(),
            new.verifying_key()
        );
    }
}
