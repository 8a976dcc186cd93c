//! The codec of every Fathom RPC: prost's, except that a request nested
//! past prost's recursion limit (100 nested messages) is refused with
//! INVALID_ARGUMENT and a field violation naming the field, such as
//! `documents[3].metadata`, instead of tonic's INTERNAL and the decoder's
//! path of every message it passed through.
//!
//! Document metadata reaches that limit first: each level of a
//! `google.protobuf.Struct` costs three nested messages (the Struct, a map
//! entry, a Value), so an upsert's metadata stops decoding at about 32
//! levels. The server's own limit, [`MAX_METADATA_DEPTH`], is lower, so that
//! a document one level past it still decodes, on every RPC, and is refused
//! with the rest of its batch's problems; this codec words the refusal of
//! deeper metadata the same way.

use std::any::TypeId;
use std::marker::PhantomData;

use bytes::Buf;
use prost::Message;
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder};
use tonic::{Code, Status};
use tonic_prost::ProstEncoder;
use tonic_types::{ErrorDetails, StatusExt};

use crate::v1 as pb;

/// The deepest document metadata a Fathom server accepts: the top-level
/// object is level 1, and each object or list within a value one more
/// (`{"a": {"b": [1]}}` is 3 levels deep).
pub const MAX_METADATA_DEPTH: usize = 20;

/// The description of metadata nested past [`MAX_METADATA_DEPTH`].
pub fn metadata_too_deep() -> String {
    format!(
        "metadata is nested more than {MAX_METADATA_DEPTH} levels deep (objects and lists); the limit is {MAX_METADATA_DEPTH}"
    )
}

/// prost's codec, with refusals that name the field for requests nested
/// too deep to decode. Generated clients use it too; for them it is
/// prost's codec.
#[derive(Debug, Clone)]
pub struct FathomCodec<T, U>(PhantomData<(T, U)>);

impl<T, U> Default for FathomCodec<T, U> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<T, U> Codec for FathomCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = FathomDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstEncoder::default()
    }

    fn decoder(&mut self) -> Self::Decoder {
        FathomDecoder(PhantomData)
    }
}

/// The decoding half of [`FathomCodec`].
#[derive(Debug, Clone)]
pub struct FathomDecoder<U>(PhantomData<U>);

impl<U> Decoder for FathomDecoder<U>
where
    U: Message + Default + 'static,
{
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        let length = buf.remaining();
        let message = buf.chunk();
        if message.len() != length {
            // Not contiguous (tonic's buffer always is): decode as prost would.
            return U::decode(buf).map(Some).map_err(|error| undecodable::<U>(&[], &error));
        }
        match U::decode(message) {
            Ok(item) => {
                buf.advance(length);
                Ok(Some(item))
            }
            Err(error) => {
                let status = undecodable::<U>(message, &error);
                buf.advance(length);
                Err(status)
            }
        }
    }

    fn buffer_settings(&self) -> BufferSettings {
        BufferSettings::default()
    }
}

/// The refusal of a `U` that prost could not decode from `message`.
fn undecodable<U: 'static>(message: &[u8], error: &prost::DecodeError) -> Status {
    let text = error.to_string();
    if !text.ends_with("recursion limit reached") {
        // What tonic says; the server's transport layer makes it INVALID_ARGUMENT.
        return Status::new(Code::Internal, text);
    }
    let (field, description) = too_deep_metadata::<U>(message).unwrap_or_else(|| {
        (
            outermost_field(&text),
            "nested too deeply to decode: past protobuf's recursion limit of 100 nested messages".to_owned(),
        )
    });
    let mut details = ErrorDetails::new();
    details.add_bad_request_violation(field.clone(), description.clone());
    Status::with_error_details(Code::InvalidArgument, format!("{field}: {description}"), details)
}

/// The first document of an upsert whose metadata nests past
/// [`MAX_METADATA_DEPTH`]: its field and the description.
fn too_deep_metadata<U: 'static>(message: &[u8]) -> Option<(String, String)> {
    let (prefix, documents) = if TypeId::of::<U>() == TypeId::of::<pb::UpsertRequest>() {
        ("", fields(message, 3))
    } else if TypeId::of::<U>() == TypeId::of::<pb::UpsertStreamRequest>() {
        let batch = *fields(message, 2).last()?;
        ("batch.", fields(batch, 2))
    } else {
        return None;
    };
    documents.iter().enumerate().find_map(|(i, document)| {
        let metadata = fields(document, 4);
        let depth = metadata
            .iter()
            .map(|object| struct_depth(object, MAX_METADATA_DEPTH + 1))
            .max()?;
        (depth > MAX_METADATA_DEPTH).then(|| (format!("{prefix}documents[{i}].metadata"), metadata_too_deep()))
    })
}

/// The outermost field on prost's path ("SearchRequest.filter: …" last),
/// as the request names it ("filter").
fn outermost_field(text: &str) -> String {
    text.rsplit(": ")
        .nth(1)
        .and_then(|segment| segment.split_once('.'))
        .map_or_else(String::new, |(_, field)| field.to_owned())
}

/// How deeply an encoded `google.protobuf.Struct` nests, itself counted as
/// 1; counting stops at `stop`.
fn struct_depth(object: &[u8], stop: usize) -> usize {
    if stop <= 1 {
        return 1;
    }
    // Struct.fields (1) holds map entries, whose value (2) is a Value.
    let deepest = fields(object, 1)
        .iter()
        .flat_map(|entry| fields(entry, 2))
        .map(|value| value_depth(value, stop - 1))
        .max();
    1 + deepest.unwrap_or(0)
}

/// How deeply an encoded `google.protobuf.Value` nests: 0 for a scalar.
fn value_depth(value: &[u8], stop: usize) -> usize {
    // Value.struct_value (5) or Value.list_value (6), whose values (1) are Values.
    let objects = fields(value, 5).into_iter().map(|object| struct_depth(object, stop));
    let lists = fields(value, 6).into_iter().map(|list| {
        if stop <= 1 {
            return 1;
        }
        1 + fields(list, 1)
            .iter()
            .map(|item| value_depth(item, stop - 1))
            .max()
            .unwrap_or(0)
    });
    objects.chain(lists).max().unwrap_or(0)
}

/// The payloads of the length-delimited fields numbered `tag` in an
/// encoded message, in order; reading stops where the encoding breaks.
fn fields(mut message: &[u8], tag: u32) -> Vec<&[u8]> {
    let mut found = Vec::new();
    while !message.is_empty() {
        let Ok(key) = prost::encoding::decode_varint(&mut message) else {
            break;
        };
        let skip = match key & 7 {
            0 => match prost::encoding::decode_varint(&mut message) {
                Ok(_) => 0,
                Err(_) => break,
            },
            1 => 8,
            2 => {
                let Ok(length) = prost::encoding::decode_varint(&mut message) else {
                    break;
                };
                let Some(payload) = usize::try_from(length).ok().and_then(|n| message.get(..n)) else {
                    break;
                };
                if key >> 3 == u64::from(tag) {
                    found.push(payload);
                }
                payload.len()
            }
            5 => 4,
            _ => break,
        };
        let Some(rest) = message.get(skip..) else {
            break;
        };
        message = rest;
    }
    found
}

#[cfg(test)]
mod tests {
    use prost_types::value::Kind;
    use prost_types::{ListValue, Struct, Value};

    use super::*;

    fn nested(depth: usize) -> Struct {
        let mut object = Struct {
            fields: [(
                "leaf".to_owned(),
                Value {
                    kind: Some(Kind::NumberValue(1.0)),
                },
            )]
            .into(),
        };
        for level in 1..depth {
            let value = if level % 2 == 0 {
                Kind::StructValue(object)
            } else {
                Kind::ListValue(ListValue {
                    values: vec![Value {
                        kind: Some(Kind::StructValue(object)),
                    }],
                })
            };
            object = Struct {
                fields: [("a".to_owned(), Value { kind: Some(value) })].into(),
            };
        }
        object
    }

    #[test]
    fn the_depth_of_encoded_metadata_counts_objects_and_lists() {
        let flat = Struct::default().encode_to_vec();
        assert_eq!(struct_depth(&flat, 100), 1);
        // Odd levels wrap the object in a list as well: two levels each.
        let object = nested(3).encode_to_vec();
        assert_eq!(struct_depth(&object, 100), 4);
        assert_eq!(struct_depth(&object, 3), 3, "counting stops");
    }

    /// Objects nested `depth` levels deep, the shape that costs prost the
    /// most nested messages a level.
    fn objects(depth: usize) -> Struct {
        let mut object = Struct::default();
        for _ in 1..depth {
            object = Struct {
                fields: [(
                    "a".to_owned(),
                    Value {
                        kind: Some(Kind::StructValue(object)),
                    },
                )]
                .into(),
            };
        }
        object
    }

    fn stream_batch_with(metadata: Struct) -> Vec<u8> {
        let batch = pb::UpsertBatch {
            documents: vec![pb::Document {
                metadata: Some(metadata),
                ..Default::default()
            }],
            ..Default::default()
        };
        pb::UpsertStreamRequest {
            request: Some(pb::upsert_stream_request::Request::Batch(batch)),
        }
        .encode_to_vec()
    }

    #[test]
    fn metadata_one_level_past_the_limit_still_decodes_so_the_server_words_its_refusal() {
        // The deepest of the upsert paths: a stream batch.
        let past_the_limit = stream_batch_with(objects(MAX_METADATA_DEPTH + 1));
        assert!(pb::UpsertStreamRequest::decode(past_the_limit.as_slice()).is_ok());
        let far_past = stream_batch_with(objects(40));
        assert!(pb::UpsertStreamRequest::decode(far_past.as_slice()).is_err());
        let error = pb::UpsertStreamRequest::decode(far_past.as_slice()).unwrap_err();
        let status = undecodable::<pb::UpsertStreamRequest>(&far_past, &error);
        let violations = status.get_details_bad_request().unwrap().field_violations;
        assert_eq!(violations[0].field, "batch.documents[0].metadata");
    }

    #[test]
    fn metadata_too_deep_to_decode_is_refused_naming_the_document() {
        let mut deep = nested(1);
        for _ in 0..60 {
            deep = Struct {
                fields: [(
                    "a".to_owned(),
                    Value {
                        kind: Some(Kind::StructValue(deep)),
                    },
                )]
                .into(),
            };
        }
        let documents = vec![
            pb::Document::default(),
            pb::Document {
                metadata: Some(deep),
                ..Default::default()
            },
        ];
        let request = pb::UpsertRequest {
            documents,
            ..Default::default()
        }
        .encode_to_vec();
        let error = pb::UpsertRequest::decode(request.as_slice()).unwrap_err();
        let status = undecodable::<pb::UpsertRequest>(&request, &error);
        assert_eq!(status.code(), Code::InvalidArgument);
        let violations = status.get_details_bad_request().unwrap().field_violations;
        assert_eq!(violations[0].field, "documents[1].metadata");
        assert_eq!(
            status.message(),
            "documents[1].metadata: metadata is nested more than 20 levels deep (objects and lists); the limit is 20"
        );
    }

    #[test]
    fn other_requests_too_deep_to_decode_name_their_outermost_field() {
        let text = "failed to decode Protobuf message: Filter.not: Not.filter: SearchRequest.filter: recursion limit \
                    reached";
        assert_eq!(outermost_field(text), "filter");
    }
}
