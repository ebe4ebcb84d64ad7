//! Generates the `vigil.v1.Node` service from proto/vigil.proto with a vendored protoc, so building
//! needs no system package, and compacts the checked-in OpenAPI document (openapi.json) into the
//! bytes `/v1/openapi.json` serves.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/vigil.proto");
    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    tonic_prost_build::configure().compile_with_config(
        config,
        &["proto/vigil.proto"],
        &["proto"],
    )?;

    println!("cargo:rerun-if-changed=openapi.json");
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let pretty = std::fs::read_to_string(manifest_dir.join("openapi.json"))?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out_dir.join("openapi.json"), compact(&pretty))?;
    Ok(())
}

/// `json` without the whitespace between tokens: the same bytes serde_json writes compactly,
/// since pretty printing only adds whitespace outside strings.
fn compact(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let mut in_string = false;
    let mut escaped = false;
    for c in json.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if !matches!(c, ' ' | '\n' | '\r' | '\t') {
            out.push(c);
            in_string = c == '"';
        }
    }
    out
}
