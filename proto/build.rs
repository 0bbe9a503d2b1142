//! Compiles `proto/` with a vendored `protoc`, so a fresh machine needs nothing but cargo.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out_dir = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    let files = [
        "proto/astral/auth/v1/auth.proto",
        "proto/astral/social/v1/social.proto",
        "proto/astral/messaging/v1/messaging.proto",
        "proto/astral/events/v1/events.proto",
    ];
    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    // Files stream through as `Bytes`, passed on without a copy.
    config.bytes([
        ".astral.messaging.v1.UploadChunk.data",
        ".astral.messaging.v1.AttachmentChunk.data",
    ]);
    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("astral_descriptor.bin"))
        .compile_with_config(config, &files, &["proto"])?;
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}
