//! Compiles `proto/fathom/v1/*.proto` once for the whole workspace, with protox
//! (pure Rust, so no system `protoc`), and writes the file descriptor set that
//! the server serves through gRPC reflection.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = [
        "proto/fathom/v1/collections.proto",
        "proto/fathom/v1/documents.proto",
        "proto/fathom/v1/filter.proto",
        "proto/fathom/v1/keys.proto",
        "proto/fathom/v1/search.proto",
    ];
    for proto in &protos {
        println!("cargo:rerun-if-changed={proto}");
    }
    let descriptors = protox::compile(protos, ["proto"])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    // `compile_fds` takes the descriptors as given and writes none, so the set
    // served by reflection is encoded here.
    std::fs::write(
        out_dir.join("fathom_descriptor.bin"),
        prost::Message::encode_to_vec(&descriptors),
    )?;
    // Every RPC decodes through `request_codec`, which names the field of a
    // request nested past prost's recursion limit.
    tonic_prost_build::configure()
        .codec_path("crate::request_codec::FathomCodec")
        .compile_fds(descriptors)?;
    Ok(())
}
