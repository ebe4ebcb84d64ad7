//! Arbitrary bytes as datagrams, push-pull hellos and push-pull states, with and without a keyring.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil_gossip::crypto::{Key, Keyring};

fuzz_target!(|data: &[u8]| {
    let keyring = Keyring::new(Key::from_bytes([7; 32]));
    for keyring in [None, Some(&keyring)] {
        let _ = vigil_gossip::fuzz_decode_packet(keyring, data);
        let _ = vigil_gossip::fuzz_decode_sync(keyring, data);
        let _ = vigil_gossip::fuzz_decode_hello(keyring, data);
    }
});
