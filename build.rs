//! Compiles `proto/walpb.proto` with prost. `protox` parses the schema in pure Rust, so building
//! raftwal never needs a `protoc` binary on the machine.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/walpb.proto");
    let descriptors = protox::compile(["proto/walpb.proto"], ["proto"])?;
    prost_build::Config::new().compile_fds(descriptors)?;
    Ok(())
}
