//! Arbitrary bytes as the JSON body of `PUT /v1/checks/{name}`: parsed and planned into a check
//! exactly as the API does, under a fixed name and under the name in the body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil_api::checkdef::CheckDefinition;

fuzz_target!(|data: &[u8]| {
    let Ok(mut definition) = serde_json::from_slice::<CheckDefinition>(data) else {
        return;
    };
    // TLS files are read when a gRPC probe is built: a path the input names could be a FIFO or a
    // device that never ends, which tests the file system rather than the parser.
    definition.options.tls_ca = None;
    definition.options.tls_cert = None;
    definition.options.tls_key = None;
    let _ = definition.plan(Some("fuzzed"));
    let _ = definition.plan(None);
});
