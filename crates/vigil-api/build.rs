//! Generates the `vigil.v1.Node` service from proto/vigil.proto with a vendored protoc, so building
//! needs no system package.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/vigil.proto");
    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    tonic_prost_build::configure().compile_with_config(
        config,
        &["proto/vigil.proto"],
        &["proto"],
    )?;
    Ok(())
}
