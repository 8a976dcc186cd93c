//! The Fathom v1 gRPC contract, generated from `proto/fathom/v1` by this
//! crate's build script: message types, client and server stubs for the
//! `Collections`, `Documents`, `Search` and `Keys` services, and the encoded file
//! descriptor set that servers expose through gRPC reflection; and
//! [`struct_json`], the mapping between `google.protobuf.Struct` (document
//! metadata) and JSON; and [`request_codec`], the codec every RPC decodes
//! with, and the metadata nesting limit it words refusals for.

/// Generated code for the `fathom.v1` package.
#[allow(clippy::all, clippy::pedantic, missing_docs)]
#[rustfmt::skip]
pub mod v1 {
    tonic::include_proto!("fathom.v1");
}

pub mod request_codec;
pub mod struct_json;

/// The encoded `FileDescriptorSet` of every `fathom.v1` proto file, for
/// `tonic-reflection`.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("fathom_descriptor");
