/**
 * The generated `fathom.v1` messages, enums and service descriptors
 * (protoc-gen-es v2), for use with Connect directly.
 *
 * @module
 */

export * from "./gen/fathom/v1/collections_pb.js";
export * from "./gen/fathom/v1/documents_pb.js";
export * from "./gen/fathom/v1/filter_pb.js";
export * from "./gen/fathom/v1/keys_pb.js";
export * from "./gen/fathom/v1/search_pb.js";
