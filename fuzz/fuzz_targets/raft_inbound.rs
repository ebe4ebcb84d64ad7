//! Arbitrary bytes as the stream a client sends to a voter's Raft port, decoded frame by frame
//! as the server decodes it, with and without a keyring. The first byte picks the keyring and
//! whether the stream is prefixed with a well-formed client hello, so that the fuzzer reaches
//! the request decoding behind it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil_cluster::raft::fuzz_decode_inbound;
use vigil_gossip::crypto::{seal, Key, Keyring};

const SERVER_NONCE: [u8; 16] = [0x5e; 16];
const CLIENT_NONCE: [u8; 16] = [0xc1; 16];
const VOTER: u64 = 7;

/// A length-prefixed frame carrying `payload`, sealed with `keyring`.
fn frame(keyring: Option<&Keyring>, payload: &[u8]) -> Vec<u8> {
    let sealed = seal(keyring, payload, &mut rand::rng());
    let mut out = (sealed.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(&sealed);
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let keyring = Keyring::new(Key::from_bytes([7; 32]));
    let keyring = (mode & 1 == 1).then_some(&keyring);
    let mut stream = Vec::new();
    if mode & 2 == 2 {
        let mut hello = vec![4u8];
        hello.extend_from_slice(&SERVER_NONCE);
        hello.extend_from_slice(&CLIENT_NONCE);
        stream.extend(frame(keyring, &hello));
        if mode & 4 == 4 {
            // The rest as one request body behind a valid binding: reaches the JSON decoding.
            let mut request = vec![2u8];
            request.extend_from_slice(&SERVER_NONCE);
            request.extend_from_slice(&CLIENT_NONCE);
            request.extend_from_slice(&0u64.to_be_bytes());
            request.extend_from_slice(rest);
            stream.extend(frame(keyring, &request));
            let _ = fuzz_decode_inbound(keyring, SERVER_NONCE, VOTER, &stream);
            return;
        }
    }
    stream.extend_from_slice(rest);
    let _ = fuzz_decode_inbound(keyring, SERVER_NONCE, VOTER, &stream);
});
