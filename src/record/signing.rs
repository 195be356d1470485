//! Whose signature makes a commit in rotor's name rotor's own (`commit.via: api`): the OpenPGP
//! keys that may sign it (`record.signing_keys`, or GitHub's web-flow keys, built in), and the
//! check of one commit's `gpgsig` against them, offline.
//!
//! The OpenPGP work is the `pgp` crate's (rPGP: pure Rust, maintained, MIT/Apache-2.0, with no
//! C library to link). rotor only decides which key counts and when: the signature must verify
//! against a listed key (the primary key or a signing subkey), and its creation time — the
//! signature packet's, not the commit's date, which the signer chooses freely — must fall
//! inside that key's validity: not before the key was made, not after it expired or was
//! revoked.

use chrono::{DateTime, Utc};
use pgp::composed::{Deserializable as _, DetachedSignature, SignedPublicKey};
use pgp::packet::{RevocationCode, SignatureType};
use pgp::types::KeyDetails as _;

/// GitHub's web-flow public keys, as GitHub publishes them (`https://github.com/web-flow.gpg`;
/// copied from the test fixtures' `github/web-flow.asc`).
const WEB_FLOW: &str = include_str!("web-flow.asc");

/// The web-flow key GitHub retired: it signs nothing made on or after 2024-01-16 (GitHub's
/// changelog of that day), whatever its own expiry says.
const RETIRED_WEB_FLOW: (&str, i64) = ("5DE3E0509C47EA3CF04A42D34AEE18F83AFDEB23", 1_705_363_200);

/// Why a commit in rotor's name is not rotor's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SigProblem {
    /// It carries no signature.
    Unsigned,
    /// It carries one that does not verify against a signing key, or was made when that key
    /// was not valid; what is wrong, in words.
    BadSignature(String),
}

impl SigProblem {
    /// The finding's `reason`.
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            Self::Unsigned => "unsigned",
            Self::BadSignature(_) => "bad_signature",
        }
    }

    /// In words, for the finding's message.
    pub(crate) fn describe(&self) -> String {
        match self {
            Self::Unsigned => "it is not signed".to_owned(),
            Self::BadSignature(why) => format!("its signature {why}"),
        }
    }
}

/// One key that may sign: its certificate and when it stops counting.
#[derive(Debug)]
struct Key {
    cert: SignedPublicKey,
    /// Seconds since the epoch after which nothing it signs counts (its expiry, its
    /// revocation, or GitHub's retirement of it).
    until: Option<i64>,
}

/// The keys that may sign rotor's commits.
#[derive(Debug)]
pub(crate) struct SigningKeys {
    keys: Vec<Key>,
    /// Where they came from, for messages.
    pub(crate) source: String,
}

impl SigningKeys {
    /// GitHub's web-flow keys.
    pub(crate) fn github() -> Self {
        // The built-in keys are rotor's own source, parsed by its tests: a failure here is a
        // build defect, reported as no key (every signature then fails, loudly).
        let keys = parse(WEB_FLOW.as_bytes()).unwrap_or_default();
        Self {
            keys,
            source: "GitHub's web-flow keys".to_owned(),
        }
    }

    /// The keys in `files` (path, content): armored or binary OpenPGP certificates. `Err`
    /// names the file that holds no usable key.
    pub(crate) fn from_files(files: &[(String, Vec<u8>)]) -> Result<Self, (String, String)> {
        let mut keys = Vec::new();
        for (path, bytes) in files {
            let found = parse(bytes).map_err(|e| (path.clone(), e))?;
            if found.is_empty() {
                return Err((path.clone(), "holds no OpenPGP public key".to_owned()));
            }
            keys.extend(found);
        }
        Ok(Self {
            keys,
            source: format!("the keys in {}", {
                let names: Vec<&str> = files.iter().map(|(p, _)| p.as_str()).collect();
                names.join(", ")
            }),
        })
    }

    /// Whether `signature` (a commit's `gpgsig`, with the bytes it signs) was made by one of
    /// these keys while it was valid.
    pub(crate) fn check(&self, signature: Option<(&str, &[u8])>) -> Result<(), SigProblem> {
        let Some((armored, data)) = signature else {
            return Err(SigProblem::Unsigned);
        };
        let (sig, _) = DetachedSignature::from_string(armored)
            .map_err(|e| SigProblem::BadSignature(format!("cannot be read ({e})")))?;
        let Some(made) = sig.signature.created().map(|t| i64::from(t.as_secs())) else {
            return Err(SigProblem::BadSignature(
                "carries no creation time".to_owned(),
            ));
        };
        for key in &self.keys {
            let by_primary = sig.verify(&key.cert.primary_key, data).is_ok();
            let by_subkey = key
                .cert
                .public_subkeys
                .iter()
                .find(|sub| sig.verify(&sub.key, data).is_ok());
            if !by_primary && by_subkey.is_none() {
                continue;
            }
            let fingerprint = hex(&key.cert.primary_key.fingerprint().to_string());
            let mut born = i64::from(key.cert.primary_key.created_at().as_secs());
            let mut until = key.until;
            if let Some(sub) = by_subkey.filter(|_| !by_primary) {
                // A subkey signs only when its binding says it may, within its own life.
                let bindings = || {
                    sub.signatures
                        .iter()
                        .filter(|s| s.typ() == Some(SignatureType::SubkeyBinding))
                };
                if !bindings().any(|b| b.key_flags().sign()) {
                    return Err(SigProblem::BadSignature(format!(
                        "was made by a subkey of {fingerprint} that is not for signing"
                    )));
                }
                born = born.max(i64::from(sub.key.created_at().as_secs()));
                let sub_until = lifetime(
                    i64::from(sub.key.created_at().as_secs()),
                    bindings(),
                    sub.signatures
                        .iter()
                        .filter(|s| s.typ() == Some(SignatureType::SubkeyRevocation)),
                );
                until = match (until, sub_until) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
            if made < born {
                return Err(SigProblem::BadSignature(format!(
                    "was made at {}, before its key {fingerprint} existed",
                    when(made)
                )));
            }
            if let Some(until) = until
                && made >= until
            {
                return Err(SigProblem::BadSignature(format!(
                    "was made at {}, after its key {fingerprint} stopped being valid at {}",
                    when(made),
                    when(until)
                )));
            }
            return Ok(());
        }
        Err(SigProblem::BadSignature(format!(
            "was not made by any of {}",
            self.source
        )))
    }
}

/// Every certificate in `bytes`, its self-signatures checked, with when it stops counting.
fn parse(bytes: &[u8]) -> Result<Vec<Key>, String> {
    const BEGIN: &str = "-----BEGIN PGP PUBLIC KEY BLOCK-----";
    let text = String::from_utf8_lossy(bytes);
    let certs: Vec<SignedPublicKey> = if text.trim_start().starts_with("-----BEGIN") {
        // A key file often holds several armored blocks one after the other (`gpg --export`
        // of two keys appended); each is read on its own.
        let mut certs = Vec::new();
        for block in text.split(BEGIN).filter(|b| !b.trim().is_empty()) {
            let armored = format!("{BEGIN}{block}");
            let (iter, _) = SignedPublicKey::from_string_many(&armored)
                .map_err(|e| format!("is not an OpenPGP public key ({e})"))?;
            for cert in iter {
                certs.push(cert.map_err(|e| format!("is not an OpenPGP public key ({e})"))?);
            }
        }
        certs
    } else {
        SignedPublicKey::from_bytes_many(bytes)
            .map_err(|e| format!("is not an OpenPGP public key ({e})"))?
            .collect::<Result<_, _>>()
            .map_err(|e| format!("is not an OpenPGP public key ({e})"))?
    };
    let mut keys = Vec::new();
    for cert in certs {
        // An expiry or a revocation counts only when the key itself made it.
        cert.verify_bindings()
            .map_err(|e| format!("holds a key whose self-signatures do not verify ({e})"))?;
        let born = i64::from(cert.primary_key.created_at().as_secs());
        let certifications = cert
            .details
            .users
            .iter()
            .flat_map(|u| u.signatures.iter())
            .chain(cert.details.direct_signatures.iter())
            .filter(|s| s.is_certification() || s.typ() == Some(SignatureType::Key));
        let mut until = lifetime(
            born,
            certifications,
            cert.details.revocation_signatures.iter(),
        );
        if hex(&cert.primary_key.fingerprint().to_string()) == RETIRED_WEB_FLOW.0 {
            until = Some(until.map_or(RETIRED_WEB_FLOW.1, |u| u.min(RETIRED_WEB_FLOW.1)));
        }
        keys.push(Key { cert, until });
    }
    Ok(keys)
}

/// When a key (or subkey) made at `born` stops counting (`None`: never): its expiry by its
/// newest self-signature (a certification or binding; a user id's revocation says nothing of
/// the key), or its revocation. A revocation that says the key was superseded or retired ends
/// it at the revocation's time; any other (compromised, or no reason given) ends it from its
/// birth: whoever holds a compromised key can date a signature as they like.
fn lifetime<'a>(
    born: i64,
    self_sigs: impl Iterator<Item = &'a pgp::packet::Signature>,
    revocations: impl Iterator<Item = &'a pgp::packet::Signature>,
) -> Option<i64> {
    let newest = self_sigs
        .filter_map(|s| s.created().map(|t| (t.as_secs(), s)))
        .max_by_key(|(t, _)| *t);
    let mut until = newest
        .and_then(|(_, s)| s.key_expiration_time())
        .map(|d| std::time::Duration::from(d).as_secs())
        .filter(|secs| *secs > 0)
        .map(|secs| born + i64::try_from(secs).unwrap_or(i64::MAX / 2));
    for r in revocations {
        let at = match r.revocation_reason_code() {
            Some(RevocationCode::KeySuperseded | RevocationCode::KeyRetired) => {
                r.created().map_or(born, |t| i64::from(t.as_secs()))
            }
            _ => born,
        };
        until = Some(until.map_or(at, |u| u.min(at)));
    }
    until
}

/// A fingerprint as upper-case hex without separators.
fn hex(fingerprint: &str) -> String {
    fingerprint
        .chars()
        .filter(char::is_ascii_hexdigit)
        .collect::<String>()
        .to_ascii_uppercase()
}

/// A time for a message.
fn when(secs: i64) -> String {
    DateTime::<Utc>::from_timestamp(secs, 0).map_or_else(|| secs.to_string(), |t| t.to_rfc3339())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn githubs_keys_are_built_in_and_the_retired_one_stops_at_its_retirement() {
        let keys = SigningKeys::github();
        assert_eq!(keys.keys.len(), 2, "both web-flow keys");
        let retired = keys
            .keys
            .iter()
            .find(|k| hex(&k.cert.primary_key.fingerprint().to_string()) == RETIRED_WEB_FLOW.0)
            .expect("the 2017 key");
        assert_eq!(retired.until, Some(1_705_363_200));
        let current = keys
            .keys
            .iter()
            .find(|k| {
                hex(&k.cert.primary_key.fingerprint().to_string())
                    == "968479A1AFF927E37D1A566BB5690EEEBB952194"
            })
            .expect("the current key");
        assert!(current.until.is_none_or(|u| u > 1_705_363_200));
    }

    #[test]
    fn no_signature_is_unsigned_and_garbage_is_bad() {
        let keys = SigningKeys::github();
        assert_eq!(keys.check(None), Err(SigProblem::Unsigned));
        let bad = keys.check(Some(("not a signature", b"data")));
        assert!(matches!(bad, Err(SigProblem::BadSignature(_))), "{bad:?}");
    }

    #[test]
    fn armored_blocks_one_after_another_are_each_read() {
        let one = include_str!("../../tests/fixtures/signing/current.asc");
        let two = include_str!("../../tests/fixtures/signing/expired.asc");
        let keys =
            SigningKeys::from_files(&[("k.asc".to_owned(), format!("{one}{two}").into_bytes())])
                .expect("keys");
        assert_eq!(keys.keys.len(), 2);
        // The expired key carries its expiry (2021-01-01T12:00Z, as gpg set it) in its self-signature.
        assert_eq!(keys.keys[1].until, Some(1_609_502_400));
    }

    #[test]
    fn a_file_without_a_key_is_named() {
        let err = SigningKeys::from_files(&[("keys/none.asc".to_owned(), b"hello".to_vec())])
            .expect_err("no key");
        assert_eq!(err.0, "keys/none.asc");
    }
}
