//! The bots' tokens at rest: AES-256-GCM under `[channels] secret_key`
//! (`VITRINE_SECRET_KEY`).
//!
//! A sealed value is `nonce (12 bytes) || ciphertext || tag (16 bytes)`.
//! Every sealing draws a fresh random 96-bit nonce from the operating
//! system: with one key and random nonces, NIST SP 800-38D's bound of 2^32
//! encryptions is far beyond what an admin API adding bots will ever do.
//! The associated data names the row and the field (`kind`, external id,
//! `token` or `secret`), so a ciphertext copied into another row, or from
//! the secret column into the token column, fails to open rather than
//! handing a business another one's token.

use aes_gcm::{
    Aes256Gcm, KeyInit, Nonce,
    aead::{Aead, Payload},
};

use crate::config::{SECRET_KEY_BYTES, Secret};

const NONCE_BYTES: usize = 12;
const TAG_BYTES: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// Wrong key, tampered bytes, or a ciphertext of another row.
    #[error("a stored bot secret does not decrypt (another key, or another row's ciphertext)")]
    Open,
    #[error("the operating system gave no random nonce: {0}")]
    Random(String),
}

/// The key, ready to seal and open. Its `Debug` shows nothing of it.
#[derive(Clone)]
pub struct SealKey {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealKey(<redacted>)")
    }
}

/// What a sealed value belongs to: its associated data.
#[derive(Debug, Clone, Copy)]
pub struct Binding<'a> {
    pub kind: &'a str,
    pub external_id: &'a str,
    /// `token` or `secret`.
    pub field: &'a str,
}

impl Binding<'_> {
    fn aad(&self) -> Vec<u8> {
        // Lengths first, so no two bindings give the same bytes.
        format!(
            "vitrine.channel_bots.v1:{}:{}:{}:{}:{}",
            self.kind.len(),
            self.kind,
            self.external_id.len(),
            self.external_id,
            self.field
        )
        .into_bytes()
    }
}

impl SealKey {
    pub fn new(key: &[u8; SECRET_KEY_BYTES]) -> Self {
        Self {
            cipher: Aes256Gcm::new(&(*key).into()),
        }
    }

    /// Encrypts `value` for `binding`, under a fresh random nonce.
    pub fn seal(&self, binding: Binding<'_>, value: &Secret) -> Result<Vec<u8>, SealError> {
        let mut nonce = [0u8; NONCE_BYTES];
        getrandom::fill(&mut nonce).map_err(|e| SealError::Random(e.to_string()))?;
        let aad = binding.aad();
        let sealed = self
            .cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: value.expose().as_bytes(),
                    aad: &aad,
                },
            )
            // Encryption fails only for inputs of gigabytes.
            .map_err(|_| SealError::Open)?;
        let mut out = Vec::with_capacity(NONCE_BYTES + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Decrypts what [`SealKey::seal`] made for the same `binding`.
    pub fn open(&self, binding: Binding<'_>, sealed: &[u8]) -> Result<Secret, SealError> {
        if sealed.len() < NONCE_BYTES + TAG_BYTES {
            return Err(SealError::Open);
        }
        let (nonce, rest) = sealed.split_at(NONCE_BYTES);
        let nonce: [u8; NONCE_BYTES] = nonce.try_into().map_err(|_| SealError::Open)?;
        let aad = binding.aad();
        let plain = self
            .cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: rest,
                    aad: &aad,
                },
            )
            .map_err(|_| SealError::Open)?;
        String::from_utf8(plain)
            .map(Secret::new)
            .map_err(|_| SealError::Open)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "123456:AAE-secret-token";

    fn key(b: u8) -> SealKey {
        SealKey::new(&[b; SECRET_KEY_BYTES])
    }

    fn row(id: &str) -> Binding<'_> {
        Binding {
            kind: "telegram",
            external_id: id,
            field: "token",
        }
    }

    #[test]
    fn a_sealed_token_opens_only_with_its_key_and_its_row() {
        let k = key(7);
        let sealed = k.seal(row("123456"), &Secret::new(TOKEN)).unwrap();
        assert_eq!(sealed.len(), NONCE_BYTES + TOKEN.len() + TAG_BYTES);
        assert!(
            !sealed.windows(TOKEN.len()).any(|w| w == TOKEN.as_bytes()),
            "the token shows in its ciphertext"
        );
        assert_eq!(k.open(row("123456"), &sealed).unwrap().expose(), TOKEN);
        // Another row, another field, another key, a flipped bit: refused.
        assert!(k.open(row("654321"), &sealed).is_err());
        let secret_field = Binding {
            field: "secret",
            ..row("123456")
        };
        assert!(k.open(secret_field, &sealed).is_err());
        assert!(key(8).open(row("123456"), &sealed).is_err());
        let mut flipped = sealed.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(k.open(row("123456"), &flipped).is_err());
        assert!(k.open(row("123456"), &sealed[..20]).is_err());
    }

    #[test]
    fn every_sealing_has_its_own_nonce() {
        let k = key(1);
        let a = k.seal(row("1"), &Secret::new(TOKEN)).unwrap();
        let b = k.seal(row("1"), &Secret::new(TOKEN)).unwrap();
        assert_ne!(a[..NONCE_BYTES], b[..NONCE_BYTES]);
        assert_ne!(a, b);
    }
}
