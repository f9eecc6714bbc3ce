//! HMAC-SHA256 webhook signatures, checked on the raw body bytes.
//!
//! The body is verified *before* it is parsed: re-serialised JSON would not
//! hash to the same value, and an unauthenticated body should cost us as
//! little work as possible. Comparison is constant-time (`Mac::verify_slice`),
//! so timing does not reveal how many leading bytes of a forged signature
//! were right.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::config::Secret;

type HmacSha256 = Hmac<Sha256>;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    #[error("missing signature header")]
    Missing,
    #[error("signature header is not of the form sha256=<hex>")]
    Malformed,
    #[error("signature does not match the body")]
    Mismatch,
}

fn mac(key: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length, so this cannot fail.
    HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length")
}

/// Raw HMAC-SHA256 of the concatenated parts.
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut m = mac(key);
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().into()
}

/// The header value BakaiMarket (and GitHub, and Meta) send:
/// `sha256=<lowercase hex HMAC of the body>`.
pub fn sign(secret: &str, body: &[u8]) -> String {
    format!(
        "sha256={}",
        hex::encode(hmac_sha256(secret.as_bytes(), &[body]))
    )
}

/// Checks `header` against every configured secret (rotation: old and new
/// keys are both valid for a while). Succeeds if any key matches.
pub fn verify(header: Option<&str>, body: &[u8], secrets: &[Secret]) -> Result<(), SignatureError> {
    let header = header.map(str::trim).filter(|h| !h.is_empty());
    let header = header.ok_or(SignatureError::Missing)?;
    let hex_sig = header
        .strip_prefix("sha256=")
        .ok_or(SignatureError::Malformed)?;
    let expected = hex::decode(hex_sig).map_err(|_| SignatureError::Malformed)?;
    if expected.len() != 32 {
        return Err(SignatureError::Malformed);
    }
    // Try every key rather than stopping at the first match, so the time
    // taken does not say which key (old or new) signed the body.
    let mut ok = false;
    for secret in secrets {
        let mut m = mac(secret.expose().as_bytes());
        m.update(body);
        ok |= m.verify_slice(&expected).is_ok();
    }
    if ok {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// Standard Webhooks (`webhook-signature: v1,<base64>`) signature of
/// `"{id}.{timestamp}.{body}"`, keyed by the base64 part of a `whsec_` secret.
/// Used by providers that follow that spec; tested against its vectors.
pub fn standard_webhooks_sign(
    secret: &str,
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> Result<String, SignatureError> {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let key = b64
        .decode(secret.strip_prefix("whsec_").unwrap_or(secret))
        .map_err(|_| SignatureError::Malformed)?;
    let ts = timestamp.to_string();
    let sig = hmac_sha256(&key, &[msg_id.as_bytes(), b".", ts.as_bytes(), b".", body]);
    Ok(format!("v1,{}", b64.encode(sig)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn fixture(rel: &str) -> serde_json::Value {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/webhooks")
            .join(rel);
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
    }

    fn secrets(s: &[&str]) -> Vec<Secret> {
        s.iter().map(|s| Secret::new(*s)).collect()
    }

    #[test]
    fn github_test_vector() {
        let v = fixture("github/x-hub-signature-256-test-vector.json");
        let secret = v["secret"].as_str().unwrap();
        let payload = v["payload"].as_str().unwrap().as_bytes();
        let header = v["X-Hub-Signature-256"].as_str().unwrap();
        assert_eq!(sign(secret, payload), header);
        assert_eq!(verify(Some(header), payload, &secrets(&[secret])), Ok(()));
    }

    #[test]
    fn standard_webhooks_test_vectors() {
        let v = fixture("standard-webhooks/test-vectors.json");
        for vector in v["vectors"].as_array().unwrap() {
            let got = standard_webhooks_sign(
                vector["secret"].as_str().unwrap(),
                vector["msg_id"].as_str().unwrap(),
                vector["timestamp"].as_i64().unwrap(),
                vector["payload"].as_str().unwrap().as_bytes(),
            )
            .unwrap();
            assert_eq!(got, vector["expected_signature"].as_str().unwrap());
        }
        let wrong = v["negative_examples_from_rust_tests"]["wrong_signature_for_vector_B_payload"]
            .as_str()
            .unwrap();
        let b = &v["vectors"][1];
        let got = standard_webhooks_sign(
            b["secret"].as_str().unwrap(),
            b["msg_id"].as_str().unwrap(),
            b["timestamp"].as_i64().unwrap(),
            b["payload"].as_str().unwrap().as_bytes(),
        )
        .unwrap();
        assert_ne!(got, wrong);
    }

    #[test]
    fn rejects_tampering_wrong_keys_and_garbage() {
        let body = br#"{"a":1}"#;
        let good = sign("k", body);
        assert_eq!(verify(Some(&good), body, &secrets(&["k"])), Ok(()));
        assert_eq!(
            verify(Some(&good), br#"{"a":2}"#, &secrets(&["k"])),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(Some(&good), body, &secrets(&["other"])),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(None, body, &secrets(&["k"])),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify(Some("md5=abc"), body, &secrets(&["k"])),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify(Some("sha256=zz"), body, &secrets(&["k"])),
            Err(SignatureError::Malformed)
        );
        // Rotation: either key verifies.
        assert_eq!(verify(Some(&good), body, &secrets(&["new", "k"])), Ok(()));
    }
}
