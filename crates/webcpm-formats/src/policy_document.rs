//! The registry's rollout policy as it travels: a [`PolicyDocument`] serialized canonically
//! (serde_json of a struct with a fixed field order, no extra whitespace), signed with ed25519,
//! and wrapped in an [`Envelope`] with the signing key and, after a key rotation, the old key's
//! endorsement of the new one.
//!
//! ```text
//! {"policy": {"policy_version": 12, "v3_percent": 30, "packages": {"ns/app": {"webc": "v2"}},
//!             "rolled_back": false, "halted": false, "issued_at": 1767000000,
//!             "expires_at": 1767604800},
//!  "key": "<hex public key>", "signature": "<hex signature of the canonical policy>",
//!  "endorsement": "<hex signature by the previous key of `webcpm-policy-key:<hex new key>`>"}
//! ```
//!
//! A client accepts an envelope when its key is the pinned one, or is endorsed by the pinned one,
//! and the signature over the canonical bytes of the policy it carries checks with that key.
//! Both the registry (signing) and the client (verifying) use this module, and nothing else.

use std::collections::BTreeMap;

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};

use crate::package::PackageName;
use crate::policy::{PackageRule, RegistryRollout};

/// What a key endorsement signs: this prefix and the new key in hex.
const ENDORSE: &str = "webcpm-policy-key:";

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
    /// The previous key's signature over this key, after a rotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endorsement: Option<String>,
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
        "the policy is signed by key {0}, which is neither the pinned key nor endorsed by it; pin the registry's current key (`rollout.policy_key`)"
    )]
    UnknownKey(String),
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

/// The old key's endorsement of a new one.
pub fn endorse(old: &SigningKey, new: &VerifyingKey) -> String {
    let message = format!("{ENDORSE}{}", key_hex(new));
    hex::encode(old.sign(message.as_bytes()).to_bytes())
}

/// Signs a policy.
pub fn sign(key: &SigningKey, policy: PolicyDocument, endorsement: Option<String>) -> Envelope {
    let signature = hex::encode(key.sign(&canonical(&policy)).to_bytes());
    Envelope {
        policy,
        key: key_hex(&key.verifying_key()),
        signature,
        endorsement,
    }
}

fn signature(text: &str) -> Result<Signature, DocumentError> {
    let bytes: [u8; 64] = hex::decode(text)
        .map_err(|_| DocumentError::BadSignature)?
        .try_into()
        .map_err(|_| DocumentError::BadSignature)?;
    Ok(Signature::from_bytes(&bytes))
}

/// Checks the envelope against the pinned key: the key is the pinned one or endorsed by it, and
/// the signature covers the policy as it is.
pub fn verify(envelope: &Envelope, pinned: &VerifyingKey) -> Result<(), DocumentError> {
    let key = parse_key(&envelope.key)?;
    if key != *pinned {
        let endorsed = envelope.endorsement.as_deref().is_some_and(|e| {
            let message = format!("{ENDORSE}{}", key_hex(&key));
            signature(e).is_ok_and(|s| pinned.verify(message.as_bytes(), &s).is_ok())
        });
        if !endorsed {
            return Err(DocumentError::UnknownKey(envelope.key.clone()));
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
        let envelope = sign(&key, doc(1), None);
        verify(&envelope, &pinned).unwrap();
        let text = serde_json::to_string(&envelope).unwrap();
        let back: Envelope = serde_json::from_str(&text).unwrap();
        verify(&back, &pinned).unwrap();
        let mut tampered = envelope.clone();
        tampered.policy.v3_percent = 100;
        assert!(matches!(
            verify(&tampered, &pinned),
            Err(DocumentError::BadSignature)
        ));
        let other = generate().unwrap();
        assert!(matches!(
            verify(&sign(&other, doc(1), None), &pinned),
            Err(DocumentError::UnknownKey(_))
        ));
    }

    #[test]
    fn a_rotated_key_is_accepted_when_the_pinned_key_endorses_it() {
        let old = generate().unwrap();
        let new = generate().unwrap();
        let endorsement = endorse(&old, &new.verifying_key());
        let envelope = sign(&new, doc(2), Some(endorsement.clone()));
        verify(&envelope, &old.verifying_key()).unwrap();
        verify(&envelope, &new.verifying_key()).unwrap();
        // An endorsement by someone else is worth nothing.
        let stranger = generate().unwrap();
        let forged = sign(&new, doc(2), Some(endorse(&stranger, &new.verifying_key())));
        assert!(verify(&forged, &old.verifying_key()).is_err());
        assert!(parse_key("zz").is_err());
        assert_eq!(
            parse_key(&key_hex(&new.verifying_key())).unwrap(),
            new.verifying_key()
        );
    }
}
