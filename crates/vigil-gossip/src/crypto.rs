//! Packet encryption and the keyring that lets keys rotate without downtime.
//!
//! Every gossip packet (UDP) and every push-pull payload (TCP) crosses the wire as a *frame*:
//!
//! ```text
//! plain frame  (no keyring): [0x00][payload]
//! sealed frame (keyring)   : [0x01][24-byte nonce][ciphertext][16-byte tag]
//! ```
//!
//! Sealed frames use XChaCha20-Poly1305 with 32-byte keys; the leading version byte is the
//! associated data, so it cannot be changed without the tag failing. The cipher was chosen for
//! its 24-byte nonce: every node of a cluster encrypts with the same shared key, and there is no
//! counter they could coordinate, so each packet draws a fresh random nonce. With 192 random
//! bits a nonce collision is negligible however many packets all senders together produce,
//! whereas AES-GCM's 12-byte (96-bit) nonces reach the birthday bound after about 2^32 packets
//! under one key — within reach of a busy cluster — and a repeated GCM nonce leaks the
//! authentication key. XChaCha20 is also constant-time in software, with no need for AES
//! hardware.
//!
//! The nonce comes from a cryptographically secure RNG that the *caller* passes in (the state
//! machine's `ChaCha20Rng`, seeded by its driver from the OS); this module never reads a clock,
//! a socket or OS randomness, so simulations stay deterministic.
//!
//! Rules enforced by [`open`]: a node with a keyring accepts only sealed frames (an attacker
//! must not be able to inject plain packets), a node without one accepts only plain frames,
//! and a sealed frame is tried against the primary key first and then each accepted key. No
//! input makes it panic.
//!
//! Sealing proves who sealed a frame, not when: replay protection is the message layer's (a stamp
//! inside the seal, see `replay.rs`), since only it knows the sender.
//!
//! Key rotation, as with Serf's keyring: [`Keyring::install`] the new key everywhere (it is then
//! accepted for decryption), [`Keyring::use_key`] it everywhere (it then encrypts; the old
//! primary stays accepted, so nodes that have not switched yet still understand each other), and
//! finally [`Keyring::remove`] the old key everywhere.

use std::fmt;
use std::str::FromStr;

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::{alphabet, DecodeError, Engine as _};
use chacha20poly1305::aead::inout::InOutBuf;
use chacha20poly1305::{AeadInOut, KeyInit, Tag, XChaCha20Poly1305, XNonce};
use rand::CryptoRng;
use sha2::{Digest, Sha256};
use zeroize::Zeroize;

/// Version byte of a plain (unencrypted) frame.
const VERSION_PLAIN: u8 = 0x00;
/// Version byte of a sealed (XChaCha20-Poly1305) frame.
const VERSION_SEALED: u8 = 0x01;
/// Length of an XChaCha20 nonce.
const NONCE_LEN: usize = 24;
/// Length of a Poly1305 tag.
const TAG_LEN: usize = 16;
/// Length of a key.
const KEY_LEN: usize = 32;

/// Bytes a sealed frame adds to its payload: version byte, nonce and tag (1 + 24 + 16 = 41).
pub const SEAL_OVERHEAD: usize = 1 + NONCE_LEN + TAG_LEN;

/// Bytes a plain frame adds to its payload: the version byte.
pub const PLAIN_OVERHEAD: usize = 1;

/// Bytes [`seal`] adds to a payload with this keyring configuration, for packet budgeting.
pub fn overhead(keyring: Option<&Keyring>) -> usize {
    match keyring {
        Some(_) => SEAL_OVERHEAD,
        None => PLAIN_OVERHEAD,
    }
}

/// Base64 as `vigil keygen` prints it and Serf users know it: standard alphabet, padding optional.
const KEY_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Why a frame could not be opened or a key could not be parsed. Messages are meant for operators.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// The frame has no bytes at all.
    #[error("empty packet: no frame version byte")]
    Empty,
    /// The frame's version byte is neither plain (0x00) nor sealed (0x01).
    #[error(
        "unknown frame version {0:#04x} (expected 0x00 plain or 0x01 encrypted); \
         is the sender a different vigil version, or not vigil at all?"
    )]
    UnknownVersion(u8),
    /// A sealed frame is shorter than its version byte, nonce and tag.
    #[error("encrypted packet is truncated: shorter than its nonce and authentication tag")]
    Truncated,
    /// A plain frame reached a node with a keyring; keyed nodes never accept plain frames.
    #[error("packet is not encrypted but this node requires encryption (a keyring is configured)")]
    PlainButKeyed,
    /// A sealed frame reached a node without a keyring.
    #[error("packet is encrypted but this node has no keyring configured")]
    SealedButNoKey,
    /// No installed key authenticates the sealed frame: wrong key, or tampered packet.
    #[error(
        "packet could not be decrypted with any installed key \
         (the sender uses a key this node does not have, or the packet was tampered with)"
    )]
    NoKeyMatched,
    /// Text given as a key is not base64 of exactly 32 bytes; says what was wrong.
    #[error("invalid key: {0}")]
    InvalidKey(String),
}

/// Why a keyring operation was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyringError {
    /// The key is not in the keyring (install it first).
    #[error("key is not installed in the keyring")]
    NotInstalled,
    /// The key is the primary key, which cannot be removed; make another key primary first.
    #[error("cannot remove the primary key; make another key primary first")]
    IsPrimary,
}

/// A 32-byte XChaCha20-Poly1305 key shared by every node of a cluster.
///
/// `Debug` prints only the [fingerprint](Key::fingerprint), never the key, and the bytes are
/// zeroed (best effort) when the key is dropped. There is deliberately no `Display`: use
/// [`Key::to_base64`] where the key itself must be shown.
#[derive(Clone, PartialEq, Eq)]
pub struct Key([u8; KEY_LEN]);

impl Key {
    /// A key from its raw bytes.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Key {
        Key(bytes)
    }

    /// A fresh random key (what `vigil keygen` prints, as [`Key::to_base64`]).
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Key {
        let mut bytes = [0u8; KEY_LEN];
        rng.fill_bytes(&mut bytes);
        Key(bytes)
    }

    /// Parses a key written as standard base64 (padding optional, surrounding whitespace
    /// ignored) of exactly 32 bytes. The error says what was wrong without echoing the key.
    pub fn parse(text: &str) -> Result<Key, CryptoError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(CryptoError::InvalidKey(
                "key is empty; expected base64 of 32 bytes (as printed by `vigil keygen`)"
                    .to_owned(),
            ));
        }
        let mut decoded = KEY_BASE64
            .decode(text)
            .map_err(|e| CryptoError::InvalidKey(describe_base64_error(&e)))?;
        let key = match <[u8; KEY_LEN]>::try_from(decoded.as_slice()) {
            Ok(bytes) => Ok(Key(bytes)),
            Err(_) => Err(CryptoError::InvalidKey(format!(
                "key decodes to {} bytes, expected {KEY_LEN} bytes",
                decoded.len()
            ))),
        };
        decoded.zeroize();
        key
    }

    /// The key as standard base64 with padding (44 characters), the form [`Key::parse`] reads.
    pub fn to_base64(&self) -> String {
        KEY_BASE64.encode(self.0)
    }

    /// A short stable identifier (8 hex digits) to show in `vigil keyring list` and logs without
    /// revealing the key: the start of a domain-separated SHA-256 of the key.
    pub fn fingerprint(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(b"vigil keyring fingerprint v1\0");
        hasher.update(self.0);
        let digest = hasher.finalize();
        digest.iter().take(4).map(|b| format!("{b:02x}")).collect()
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(&self.0.into())
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({})", self.fingerprint())
    }
}

impl FromStr for Key {
    type Err = CryptoError;

    fn from_str(text: &str) -> Result<Key, CryptoError> {
        Key::parse(text)
    }
}

impl Drop for Key {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// Operator-facing description of a base64 error that never echoes a character of the key.
fn describe_base64_error(error: &DecodeError) -> String {
    match *error {
        // A byte outside the alphabet is not key material, so it may be shown.
        DecodeError::InvalidByte(offset, byte) => format!(
            "not base64: unexpected character {:?} at position {offset} \
             (expected standard base64: A-Z a-z 0-9 + / and optional = padding)",
            char::from(byte)
        ),
        DecodeError::InvalidLength(_) => {
            "not base64: the number of characters is not a valid base64 length \
             (truncated or extra characters?)"
                .to_owned()
        }
        DecodeError::InvalidLastSymbol(offset, _) => format!(
            "not base64: the character at position {offset} is not a valid last character \
             (truncated or corrupted key?)"
        ),
        DecodeError::InvalidPadding => "not base64: invalid '=' padding".to_owned(),
    }
}

/// The keys a node holds: the primary encrypts, every key (primary and accepted) may decrypt.
///
/// Invariant: no key appears twice, and the primary is not among the accepted keys.
#[derive(Clone, PartialEq, Eq)]
pub struct Keyring {
    primary: Key,
    accepted: Vec<Key>,
}

impl Keyring {
    /// A keyring holding only `primary`.
    pub fn new(primary: Key) -> Keyring {
        Keyring {
            primary,
            accepted: Vec::new(),
        }
    }

    /// The key that seals outgoing frames.
    pub fn primary(&self) -> &Key {
        &self.primary
    }

    /// Every installed key, primary first, then the accepted keys in the order [`open`] tries them.
    pub fn keys(&self) -> impl Iterator<Item = &Key> {
        std::iter::once(&self.primary).chain(self.accepted.iter())
    }

    /// Whether `key` is installed (as primary or accepted).
    pub fn contains(&self, key: &Key) -> bool {
        self.keys().any(|k| k == key)
    }

    /// Installs `key` as accepted for decryption; `false` (and no change) if already installed.
    pub fn install(&mut self, key: Key) -> bool {
        if self.contains(&key) {
            return false;
        }
        self.accepted.push(key);
        true
    }

    /// Makes an installed key the primary. The old primary stays installed as the first accepted
    /// key, since peers that have not switched yet still seal with it. Using the current primary
    /// again is a no-op.
    pub fn use_key(&mut self, key: &Key) -> Result<(), KeyringError> {
        if *key == self.primary {
            return Ok(());
        }
        let index = self
            .accepted
            .iter()
            .position(|k| k == key)
            .ok_or(KeyringError::NotInstalled)?;
        let new_primary = self.accepted.remove(index);
        let old_primary = std::mem::replace(&mut self.primary, new_primary);
        self.accepted.insert(0, old_primary);
        Ok(())
    }

    /// Removes an accepted key. The primary cannot be removed, and an unknown key is an error.
    pub fn remove(&mut self, key: &Key) -> Result<(), KeyringError> {
        if *key == self.primary {
            return Err(KeyringError::IsPrimary);
        }
        let index = self
            .accepted
            .iter()
            .position(|k| k == key)
            .ok_or(KeyringError::NotInstalled)?;
        self.accepted.remove(index);
        Ok(())
    }
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("primary", &self.primary)
            .field("accepted", &self.accepted)
            .finish()
    }
}

/// Wraps `payload` in a frame: sealed with the keyring's primary key and a fresh random nonce
/// drawn from `rng`, or plain when `keyring` is `None` (`rng` is then not used).
///
/// The frame is [`overhead`]`(keyring)` bytes longer than `payload`.
///
/// # Panics
///
/// Only if `payload` exceeds XChaCha20-Poly1305's limit of about 256 GiB, which no packet or
/// push-pull payload can reach.
pub fn seal<R: CryptoRng + ?Sized>(
    keyring: Option<&Keyring>,
    payload: &[u8],
    rng: &mut R,
) -> Vec<u8> {
    let Some(keyring) = keyring else {
        let mut frame = Vec::with_capacity(PLAIN_OVERHEAD + payload.len());
        frame.push(VERSION_PLAIN);
        frame.extend_from_slice(payload);
        return frame;
    };

    let mut nonce = [0u8; NONCE_LEN];
    rng.fill_bytes(&mut nonce);

    let mut frame = Vec::with_capacity(SEAL_OVERHEAD + payload.len());
    frame.push(VERSION_SEALED);
    frame.extend_from_slice(&nonce);
    let body_start = frame.len();
    frame.extend_from_slice(payload);
    let tag = keyring
        .primary
        .cipher()
        .encrypt_inout_detached(
            &XNonce::from(nonce),
            &[VERSION_SEALED],
            InOutBuf::from(&mut frame[body_start..]),
        )
        .expect("XChaCha20-Poly1305 only refuses payloads over 256 GiB");
    frame.extend_from_slice(&tag);
    frame
}

/// Unwraps a frame received from the network and returns its payload.
///
/// With a keyring only sealed frames are accepted, tried against the primary key and then each
/// accepted key; without one only plain frames are. Never panics, whatever `frame` holds.
pub fn open(keyring: Option<&Keyring>, frame: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let (&version, rest) = frame.split_first().ok_or(CryptoError::Empty)?;
    match (version, keyring) {
        (VERSION_PLAIN, None) => Ok(rest.to_vec()),
        (VERSION_PLAIN, Some(_)) => Err(CryptoError::PlainButKeyed),
        (VERSION_SEALED, None) => Err(CryptoError::SealedButNoKey),
        (VERSION_SEALED, Some(keyring)) => open_sealed(keyring, rest),
        (other, _) => Err(CryptoError::UnknownVersion(other)),
    }
}

/// Opens the part of a sealed frame after its version byte: nonce, ciphertext, tag.
fn open_sealed(keyring: &Keyring, sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let (nonce, rest) = sealed
        .split_first_chunk::<NONCE_LEN>()
        .ok_or(CryptoError::Truncated)?;
    let (ciphertext, tag) = rest
        .split_last_chunk::<TAG_LEN>()
        .ok_or(CryptoError::Truncated)?;
    let nonce = XNonce::from(*nonce);
    let tag = Tag::from(*tag);

    let mut plaintext = vec![0u8; ciphertext.len()];
    for key in keyring.keys() {
        let Ok(buffer) = InOutBuf::new(ciphertext, &mut plaintext) else {
            // Unreachable: both buffers have the same length by construction.
            return Err(CryptoError::Truncated);
        };
        // The tag is verified before anything is decrypted into `plaintext`.
        if key
            .cipher()
            .decrypt_inout_detached(&nonce, &[VERSION_SEALED], buffer, &tag)
            .is_ok()
        {
            return Ok(plaintext);
        }
    }
    Err(CryptoError::NoKeyMatched)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    fn rng() -> ChaCha20Rng {
        ChaCha20Rng::seed_from_u64(7)
    }

    fn key(byte: u8) -> Key {
        Key::from_bytes([byte; 32])
    }

    #[test]
    fn overhead_constants_match_frames() {
        let ring = Keyring::new(key(1));
        let payload = b"hello gossip";
        let sealed = seal(Some(&ring), payload, &mut rng());
        assert_eq!(sealed.len(), payload.len() + SEAL_OVERHEAD);
        assert_eq!(SEAL_OVERHEAD, 41);
        assert_eq!(overhead(Some(&ring)), SEAL_OVERHEAD);
        let plain = seal(None, payload, &mut rng());
        assert_eq!(plain.len(), payload.len() + PLAIN_OVERHEAD);
        assert_eq!(overhead(None), PLAIN_OVERHEAD);
    }

    #[test]
    fn round_trip_without_keyring() {
        let frame = seal(None, b"payload", &mut rng());
        assert_eq!(frame, b"\x00payload");
        assert_eq!(open(None, &frame).unwrap(), b"payload");
        assert_eq!(open(None, &[0x00]).unwrap(), b"");
    }

    #[test]
    fn round_trip_with_keyring() {
        let ring = Keyring::new(key(1));
        let mut rng = rng();
        for payload in [&b""[..], b"x", &[0xAB; 1400]] {
            let frame = seal(Some(&ring), payload, &mut rng);
            assert_eq!(frame.first(), Some(&0x01));
            assert!(
                !frame.windows(8).any(|w| w == [0xAB; 8]),
                "payload must not appear in clear"
            );
            assert_eq!(open(Some(&ring), &frame).unwrap(), payload);
        }
    }

    #[test]
    fn nonces_are_fresh_and_deterministic_given_the_rng() {
        let ring = Keyring::new(key(1));
        let mut a = rng();
        let first = seal(Some(&ring), b"same", &mut a);
        let second = seal(Some(&ring), b"same", &mut a);
        assert_ne!(first, second, "each frame draws a new nonce");
        let replay = seal(Some(&ring), b"same", &mut rng());
        assert_eq!(first, replay, "same seeded rng, same frame");
    }

    #[test]
    fn wrong_key_is_no_key_matched() {
        let frame = seal(Some(&Keyring::new(key(1))), b"secret", &mut rng());
        let other = Keyring::new(key(2));
        assert_eq!(open(Some(&other), &frame), Err(CryptoError::NoKeyMatched));
    }

    #[test]
    fn plain_frame_to_keyed_node_is_refused() {
        let ring = Keyring::new(key(1));
        let frame = seal(None, b"inject", &mut rng());
        assert_eq!(open(Some(&ring), &frame), Err(CryptoError::PlainButKeyed));
        assert_eq!(open(Some(&ring), &[0x00]), Err(CryptoError::PlainButKeyed));
        assert_eq!(
            CryptoError::PlainButKeyed.to_string(),
            "packet is not encrypted but this node requires encryption (a keyring is configured)"
        );
    }

    #[test]
    fn sealed_frame_to_unkeyed_node_is_refused() {
        let frame = seal(Some(&Keyring::new(key(1))), b"x", &mut rng());
        assert_eq!(open(None, &frame), Err(CryptoError::SealedButNoKey));
        assert_eq!(open(None, &[0x01]), Err(CryptoError::SealedButNoKey));
    }

    #[test]
    fn empty_and_unknown_versions() {
        let ring = Keyring::new(key(1));
        assert_eq!(open(None, &[]), Err(CryptoError::Empty));
        assert_eq!(open(Some(&ring), &[]), Err(CryptoError::Empty));
        assert_eq!(
            open(None, &[0x02, 1, 2]),
            Err(CryptoError::UnknownVersion(2))
        );
        assert_eq!(
            open(Some(&ring), &[0xFF]),
            Err(CryptoError::UnknownVersion(0xFF))
        );
        assert!(CryptoError::UnknownVersion(2).to_string().contains("0x02"));
    }

    #[test]
    fn rotation_without_downtime() {
        let (k1, k2) = (key(1), key(2));
        let mut a = Keyring::new(k1.clone());
        let mut b = Keyring::new(k1.clone());
        let mut rng = rng();
        let old_frame = seal(Some(&a), b"sealed with k1", &mut rng);

        // Install k2 everywhere: still sealing with k1.
        assert!(a.install(k2.clone()));
        assert!(b.install(k2.clone()));
        assert!(!a.install(k2.clone()), "already installed");
        assert!(!a.install(k1.clone()), "primary is installed too");
        assert_eq!(
            a.keys().cloned().collect::<Vec<_>>(),
            [k1.clone(), k2.clone()]
        );

        // A switches first: both directions still work.
        a.use_key(&k2).unwrap();
        assert_eq!(a.primary(), &k2);
        assert_eq!(
            a.keys().cloned().collect::<Vec<_>>(),
            [k2.clone(), k1.clone()]
        );
        let from_a = seal(Some(&a), b"a->b", &mut rng);
        let from_b = seal(Some(&b), b"b->a", &mut rng);
        assert_eq!(
            open(Some(&b), &from_a).unwrap(),
            b"a->b",
            "k2 accepted on B"
        );
        assert_eq!(
            open(Some(&a), &from_b).unwrap(),
            b"b->a",
            "k1 accepted on A"
        );

        // B switches, then k1 goes away everywhere.
        b.use_key(&k2).unwrap();
        b.use_key(&k2).unwrap(); // no-op
        assert_eq!(b.primary(), &k2);
        a.remove(&k1).unwrap();
        b.remove(&k1).unwrap();
        assert_eq!(a.keys().count(), 1);
        assert_eq!(open(Some(&a), &old_frame), Err(CryptoError::NoKeyMatched));
        assert_eq!(open(Some(&b), &from_b), Err(CryptoError::NoKeyMatched));
        let fresh = seal(Some(&b), b"k2 only", &mut rng);
        assert_eq!(open(Some(&a), &fresh).unwrap(), b"k2 only");

        // Errors.
        assert_eq!(a.remove(&k2), Err(KeyringError::IsPrimary));
        assert_eq!(a.remove(&k1), Err(KeyringError::NotInstalled));
        assert_eq!(a.use_key(&k1), Err(KeyringError::NotInstalled));
        assert_eq!(a.primary(), &k2);
    }

    #[test]
    fn tampering_anywhere_is_detected() {
        let ring = Keyring::new(key(1));
        let frame = seal(Some(&ring), b"membership update", &mut rng());
        for i in 0..frame.len() {
            for flip in [0x01u8, 0x80, 0xFF] {
                let mut bad = frame.clone();
                bad[i] ^= flip;
                assert!(open(Some(&ring), &bad).is_err(), "byte {i} ^ {flip:#x}");
            }
        }
        // Appending or dropping a byte also breaks the tag.
        let mut longer = frame.clone();
        longer.push(0);
        assert_eq!(open(Some(&ring), &longer), Err(CryptoError::NoKeyMatched));
    }

    #[test]
    fn truncated_frames_are_errors() {
        let ring = Keyring::new(key(1));
        let frame = seal(Some(&ring), b"0123456789abcdef0123", &mut rng());
        for len in 0..frame.len() {
            assert!(open(Some(&ring), &frame[..len]).is_err(), "prefix {len}");
        }
        let empty_payload = seal(Some(&ring), b"", &mut rng());
        assert_eq!(empty_payload.len(), 41);
        for len in 0..=40 {
            let prefix = &empty_payload[..len];
            let expected = if len == 0 {
                CryptoError::Empty
            } else {
                CryptoError::Truncated
            };
            assert_eq!(open(Some(&ring), prefix), Err(expected), "prefix {len}");
            // Junk of every short length behind a sealed version byte, too.
            let mut junk = vec![0x5Au8; len];
            if let Some(first) = junk.first_mut() {
                *first = 0x01;
            }
            assert!(open(Some(&ring), &junk).is_err());
            assert!(open(None, &junk).is_err());
        }
        assert_eq!(open(Some(&ring), &empty_payload).unwrap(), b"");
    }

    #[test]
    fn key_parse_good() {
        let k = Key::from_bytes(*b"0123456789abcdef0123456789abcdef");
        let text = k.to_base64();
        assert_eq!(text.len(), 44);
        assert!(text.ends_with('='));
        assert_eq!(Key::parse(&text).unwrap(), k);
        assert_eq!(
            Key::parse(text.trim_end_matches('=')).unwrap(),
            k,
            "unpadded"
        );
        assert_eq!(Key::parse(&format!("  {text}\n")).unwrap(), k, "trimmed");
        assert_eq!(text.parse::<Key>().unwrap(), k, "FromStr");
        let generated = Key::generate(&mut rng());
        assert_eq!(Key::parse(&generated.to_base64()).unwrap(), generated);
    }

    fn invalid(text: &str) -> String {
        match Key::parse(text) {
            Err(CryptoError::InvalidKey(message)) => message,
            other => panic!("expected InvalidKey for {text:?}, got {other:?}"),
        }
    }

    #[test]
    fn key_parse_bad() {
        assert!(invalid("").contains("empty"));
        assert!(invalid("   \n").contains("empty"));
        assert!(invalid("not base64!").contains("not base64"));
        let message = invalid("abc$defg");
        assert!(
            message.contains("'$'") && message.contains("position 3"),
            "{message}"
        );
        assert!(invalid("abcde").contains("not base64"), "bad length");
        // URL-safe alphabet is not standard base64.
        assert!(invalid("-_-_").contains("not base64"));

        let short = KEY_BASE64.encode([7u8; 16]);
        assert_eq!(
            invalid(&short),
            "key decodes to 16 bytes, expected 32 bytes"
        );
        let long = KEY_BASE64.encode([7u8; 33]);
        assert_eq!(invalid(&long), "key decodes to 33 bytes, expected 32 bytes");
        assert_eq!(
            Key::parse(&short).unwrap_err().to_string(),
            "invalid key: key decodes to 16 bytes, expected 32 bytes"
        );
    }

    #[test]
    fn key_parse_error_never_echoes_the_key() {
        let k = Key::from_bytes([0x42; 32]);
        let mut text = k.to_base64();
        text.pop(); // drop '=' ...
        text.pop(); // ... and a key character: a truncated key
        let message = invalid(&text);
        assert!(!message.contains(&text), "{message}");
    }

    #[test]
    fn debug_never_shows_the_key() {
        let k = Key::generate(&mut rng());
        let secret = k.to_base64();
        let hex: String = k.0.iter().map(|b| format!("{b:02x}")).collect();
        let fp = k.fingerprint();
        assert_eq!(fp.len(), 8);
        assert_eq!(fp, k.clone().fingerprint(), "stable");
        assert_ne!(fp, key(9).fingerprint());

        let mut ring = Keyring::new(k.clone());
        ring.install(key(3));
        for text in [
            format!("{k:?}"),
            format!("{k:#?}"),
            format!("{ring:?}"),
            format!("{ring:#?}"),
        ] {
            assert!(!text.contains(&secret), "{text}");
            assert!(!text.contains(&secret[..8]), "{text}");
            assert!(!text.contains(&hex[..16]), "{text}");
            assert!(text.contains(&fp), "{text}");
        }
        assert_eq!(format!("{k:?}"), format!("Key({fp})"));
    }

    proptest! {
        #[test]
        fn open_never_panics_without_keyring(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = open(None, &bytes);
        }

        #[test]
        fn open_never_panics_with_keyring(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let mut ring = Keyring::new(key(1));
            ring.install(key(2));
            prop_assert!(open(Some(&ring), &bytes).is_err());
            // Also with a valid-looking header.
            let mut sealed = vec![0x01];
            sealed.extend_from_slice(&bytes);
            prop_assert!(open(Some(&ring), &sealed).is_err());
        }

        #[test]
        fn seal_open_round_trips(payload in proptest::collection::vec(any::<u8>(), 0..2048), seed: u64) {
            let mut rng = ChaCha20Rng::seed_from_u64(seed);
            let ring = Keyring::new(Key::generate(&mut rng));
            let frame = seal(Some(&ring), &payload, &mut rng);
            prop_assert_eq!(frame.len(), payload.len() + SEAL_OVERHEAD);
            prop_assert_eq!(open(Some(&ring), &frame), Ok(payload.clone()));
            let plain = seal(None, &payload, &mut rng);
            prop_assert_eq!(open(None, &plain), Ok(payload));
        }
    }
}
