//! Decoding never panics, whatever arrives from the network.

use proptest::prelude::*;
use vigil_gossip::crypto::{Key, Keyring};
use vigil_gossip::version::PROTOCOL_MAX;
use vigil_gossip::{fuzz_decode_hello, fuzz_decode_packet, fuzz_decode_sync};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_frames_decode_or_fail_cleanly(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let keyring = Keyring::new(Key::from_bytes([3; 32]));
        for keyring in [None, Some(&keyring)] {
            let _ = fuzz_decode_packet(keyring, &bytes);
            let _ = fuzz_decode_sync(keyring, &bytes);
            let _ = fuzz_decode_hello(keyring, &bytes);
        }
    }

    #[test]
    fn arbitrary_plain_messages_decode_or_fail_cleanly(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let mut frame = vec![0x00, PROTOCOL_MAX];
        frame.extend_from_slice(&bytes);
        let _ = fuzz_decode_packet(None, &frame);
        let _ = fuzz_decode_sync(None, &frame);
        let _ = fuzz_decode_hello(None, &frame);
    }
}
