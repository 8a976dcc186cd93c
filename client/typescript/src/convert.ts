/**
 * Conversions between the public types and the generated messages. No I/O.
 *
 * @internal
 * @module
 */

import { create, type JsonObject, type JsonValue, type MessageInitShape } from "@bufbuild/protobuf";
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  type Alias as AliasMessage,
  type AliasAction as AliasActionMessage,
  AliasActionSchema,
  type Collection as CollectionMessage,
  CreateCollectionRequestSchema,
  DistanceMetric,
  type GetCollectionStatsResponse,
  type IndexSettings,
  IndexBuild as IndexBuildMessage,
  IndexPrecision as IndexPrecisionMessage,
  IndexSettingsSchema,
  IndexState as IndexStateMessage,
  KeywordRanking as KeywordRankingMessage,
} from "./gen/fathom/v1/collections_pb.js";
import {
  type DeleteRequest,
  DeleteRequestSchema,
  type Document as DocumentMessage,
  DocumentSchema,
  type Include,
  IncludeSchema,
  type UpdateRequest,
  UpdateRequestSchema,
  type UpsertRequest,
  UpsertRequestSchema,
} from "./gen/fathom/v1/documents_pb.js";
import { type Filter, type IdCondition, IdConditionSchema } from "./gen/fathom/v1/filter_pb.js";
import {
  type ApiKey as ApiKeyMessage,
  type CreateKeyRequest,
  CreateKeyRequestSchema,
  KeyRole as KeyRoleMessage,
  KeyState as KeyStateMessage,
} from "./gen/fathom/v1/keys_pb.js";
import { type Fusion, FusionSchema, type SearchHit, SearchRequestSchema, type SearchRequest } from "./gen/fathom/v1/search_pb.js";
import { rfc3339, toFilter } from "./filters.js";
import type {
  ApiKeyInfo,
  Alias,
  AliasAction,
  CollectionInfo,
  CollectionStats,
  CreateCollectionOptions,
  CreateKeyOptions,
  Document,
  DocumentInput,
  DocumentSelector,
  DocumentUpdate,
  FusionSpec,
  Hit,
  IncludeField,
  IndexBuild,
  IndexPrecision,
  IndexSpec,
  IndexState,
  KeyRole,
  KeyState,
  KeywordRanking,
  MetadataInput,
  MetadataValue,
  Metric,
  SearchQuery,
  VectorInput,
} from "./types.js";

const METRICS: Record<Metric, DistanceMetric> = {
  cosine: DistanceMetric.COSINE,
  l2: DistanceMetric.L2,
  inner_product: DistanceMetric.INNER_PRODUCT,
};
const PRECISIONS: Record<IndexPrecision, IndexPrecisionMessage> = {
  half: IndexPrecisionMessage.HALF,
  single: IndexPrecisionMessage.SINGLE,
};
const INDEX_BUILDS: Record<IndexBuild, IndexBuildMessage> = {
  automatic: IndexBuildMessage.AUTOMATIC,
  immediate: IndexBuildMessage.IMMEDIATE,
  on_request: IndexBuildMessage.ON_REQUEST,
};
const INDEX_STATES: ReadonlyMap<IndexStateMessage, IndexState> = new Map([
  [IndexStateMessage.READY, "ready"],
  [IndexStateMessage.DEFERRED, "deferred"],
  [IndexStateMessage.BUILDING, "building"],
]);
const KEYWORD_RANKINGS: ReadonlyMap<KeywordRankingMessage, KeywordRanking> = new Map([
  [KeywordRankingMessage.BM25, "bm25"],
  [KeywordRankingMessage.TS_RANK, "ts_rank"],
]);
const KEY_ROLES: Record<KeyRole, KeyRoleMessage> = {
  read: KeyRoleMessage.READ,
  write: KeyRoleMessage.WRITE,
  admin: KeyRoleMessage.ADMIN,
};
const KEY_STATES: ReadonlyMap<KeyStateMessage, KeyState> = new Map([
  [KeyStateMessage.ACTIVE, "active"],
  [KeyStateMessage.EXPIRED, "expired"],
  [KeyStateMessage.REVOKED, "revoked"],
]);
const INCLUDE_FIELDS: readonly IncludeField[] = ["text", "metadata", "vector"];

// -- collections ----------------------------------------------------------------

/** Maps `"cosine"`, `"l2"` or `"inner_product"` to the proto enum. */
export function metricToProto(metric: Metric): DistanceMetric {
  const value = METRICS[metric];
  if (value === undefined) {
    throw new TypeError(`unknown metric "${String(metric)}": expected one of ${Object.keys(METRICS).join(", ")}`);
  }
  return value;
}

/** Builds `IndexSettings`; undefined leaves it to the server (HNSW defaults). */
export function indexToProto(index: IndexSpec | undefined): IndexSettings | undefined {
  if (index === undefined) return undefined;
  const spec = typeof index === "string" ? { kind: index } : index;
  if (spec.kind === "hnsw") {
    const m = "m" in spec ? (spec.m ?? 0) : 0;
    const efConstruction = "efConstruction" in spec ? (spec.efConstruction ?? 0) : 0;
    const precision = precisionToProto("precision" in spec ? spec.precision : undefined);
    return create(IndexSettingsSchema, { kind: { case: "hnsw", value: { m, efConstruction, precision } } });
  }
  if (spec.kind === "none") return create(IndexSettingsSchema, { kind: { case: "none", value: {} } });
  throw new TypeError(`unknown index ${JSON.stringify(index)}: expected "hnsw", "none" or { kind, ... }`);
}

/** Maps `"half"` or `"single"` to the proto enum; undefined is UNSPECIFIED (the server's default, half). */
export function precisionToProto(precision: IndexPrecision | undefined): IndexPrecisionMessage {
  if (precision === undefined) return IndexPrecisionMessage.UNSPECIFIED;
  const value = Object.hasOwn(PRECISIONS, precision) ? PRECISIONS[precision] : undefined;
  if (value === undefined) {
    throw new TypeError(`unknown index precision "${String(precision)}": expected one of ${Object.keys(PRECISIONS).join(", ")}`);
  }
  return value;
}

/**
 * Maps the proto `IndexPrecision` to `"half"` or `"single"`; UNSPECIFIED (from
 * a server older than index precisions) and a value newer than this client
 * are undefined.
 */
export function precisionName(precision: IndexPrecisionMessage): IndexPrecision | undefined {
  return (Object.keys(PRECISIONS) as IndexPrecision[]).find((key) => PRECISIONS[key] === precision);
}

/**
 * Maps `"automatic"`, `"immediate"` or `"on_request"` to the proto enum;
 * undefined is UNSPECIFIED (the server's default: automatic, or on_request
 * with `deferIndex`).
 */
export function indexBuildToProto(indexBuild: IndexBuild | undefined): IndexBuildMessage {
  if (indexBuild === undefined) return IndexBuildMessage.UNSPECIFIED;
  const value = Object.hasOwn(INDEX_BUILDS, indexBuild) ? INDEX_BUILDS[indexBuild] : undefined;
  if (value === undefined) {
    throw new TypeError(`unknown indexBuild "${String(indexBuild)}": expected one of ${Object.keys(INDEX_BUILDS).join(", ")}`);
  }
  return value;
}

/**
 * Maps the proto `IndexBuild` to `"automatic"`, `"immediate"` or
 * `"on_request"`; UNSPECIFIED (from a server older than index builds) and a
 * value newer than this client are `"unspecified"`.
 */
export function indexBuildName(indexBuild: IndexBuildMessage): IndexBuild | "unspecified" {
  return (Object.keys(INDEX_BUILDS) as IndexBuild[]).find((key) => INDEX_BUILDS[key] === indexBuild) ?? "unspecified";
}

/**
 * Builds a `CreateCollectionRequest`. `deferIndex` with another `indexBuild`
 * is sent as it is, for the server to refuse.
 */
export function createCollectionRequest(name: string, dimension: number, options: CreateCollectionOptions = {}) {
  const index = indexToProto(options.index);
  return create(CreateCollectionRequestSchema, {
    name,
    dimension,
    metric: metricToProto(options.metric ?? "cosine"),
    textLanguage: options.language ?? "english",
    multiTenant: options.multiTenant ?? false,
    deferIndex: options.deferIndex ?? false,
    indexBuild: indexBuildToProto(options.indexBuild),
    ...(index ? { index } : {}),
  });
}

/**
 * An alias action as its message. Refuses (TypeError, naming its position)
 * an action of another kind, which the server would only call unset.
 */
export function aliasActionToProto(action: AliasAction, position: number): AliasActionMessage {
  switch (action.kind) {
    case "create":
      return create(AliasActionSchema, {
        action: { case: "createAlias", value: { alias: action.alias, collection: action.collection } },
      });
    case "switch":
      return create(AliasActionSchema, {
        action: { case: "switchAlias", value: { alias: action.alias, collection: action.collection } },
      });
    case "delete":
      return create(AliasActionSchema, { action: { case: "deleteAlias", value: { alias: action.alias } } });
    default:
      throw new TypeError(
        `actions[${position}] has kind ${JSON.stringify((action as { kind?: unknown }).kind)}; use "create", "switch" or "delete"`,
      );
  }
}

/** Converts an `Alias` message. */
export function aliasFromProto(message: AliasMessage): Alias {
  return {
    alias: message.alias,
    collection: message.collection,
    updateTime: message.updateTime ? timestampDate(message.updateTime) : undefined,
  };
}

/** Converts a `Collection` message. */
export function collectionInfo(message: CollectionMessage): CollectionInfo {
  const metric = (Object.keys(METRICS) as Metric[]).find((key) => METRICS[key] === message.metric) ?? "cosine";
  return {
    name: message.name,
    dimension: message.dimension,
    metric,
    index: indexFromProto(message.index),
    language: message.textLanguage,
    multiTenant: message.multiTenant,
    createTime: message.createTime ? timestampDate(message.createTime) : undefined,
    indexState: indexStateName(message.indexState),
    keywordRanking: KEYWORD_RANKINGS.get(message.keywordRanking) ?? "unspecified",
    indexBuild: indexBuildName(message.indexBuild),
  };
}

/** Converts `IndexSettings`; unset is HNSW with the server's defaults (0 parameters). */
function indexFromProto(settings: IndexSettings | undefined): CollectionInfo["index"] {
  const kind = settings?.kind;
  if (kind?.case === "none") return { kind: "none" };
  if (kind?.case !== "hnsw") return { kind: "hnsw", m: 0, efConstruction: 0 };
  const precision = precisionName(kind.value.precision);
  return { kind: "hnsw", m: kind.value.m, efConstruction: kind.value.efConstruction, ...(precision ? { precision } : {}) };
}

/**
 * Maps the proto `IndexState` to `"ready"`, `"deferred"` or `"building"`;
 * UNSPECIFIED (and a state newer than this client) is `"unspecified"`.
 */
export function indexStateName(state: IndexStateMessage): IndexState {
  return INDEX_STATES.get(state) ?? "unspecified";
}

/** Converts a `GetCollectionStatsResponse`. */
export function collectionStats(message: GetCollectionStatsResponse): CollectionStats {
  return {
    name: message.name,
    documentCount: Number(message.documentCount),
    tableBytes: Number(message.tableBytes),
    indexBytes: Number(message.indexBytes),
    totalBytes: Number(message.totalBytes),
  };
}

// -- keys --------------------------------------------------------------------------

/**
 * Builds a `CreateKeyRequest`; `expiresInMs` counts from this machine's clock now.
 * @throws TypeError for an unknown role, or both `expiresAt` and `expiresInMs`.
 */
export function createKeyRequest(role: KeyRole, description: string, options: CreateKeyOptions = {}): CreateKeyRequest {
  const roleValue = KEY_ROLES[role];
  if (roleValue === undefined) {
    throw new TypeError(`unknown role "${String(role)}": expected one of ${Object.keys(KEY_ROLES).join(", ")}`);
  }
  if (options.expiresAt !== undefined && options.expiresInMs !== undefined) {
    throw new TypeError("give expiresAt or expiresInMs, not both");
  }
  const expiresAt =
    options.expiresInMs !== undefined ? new Date(Date.now() + options.expiresInMs) : options.expiresAt;
  return create(CreateKeyRequestSchema, {
    role: roleValue,
    description,
    collections: [...(options.collections ?? [])],
    ...(options.tenant !== undefined ? { tenant: options.tenant } : {}),
    ...(expiresAt !== undefined ? { expireTime: timestampFromDate(expiresAt) } : {}),
  });
}

/** Converts an `ApiKey` message. */
export function apiKeyInfo(message: ApiKeyMessage): ApiKeyInfo {
  const role = (Object.keys(KEY_ROLES) as KeyRole[]).find((key) => KEY_ROLES[key] === message.role) ?? "unspecified";
  return {
    id: message.id,
    role,
    tenant: message.tenant,
    collections: [...message.collections],
    description: message.description,
    createTime: message.createTime ? timestampDate(message.createTime) : undefined,
    expireTime: message.expireTime ? timestampDate(message.expireTime) : undefined,
    revokeTime: message.revokeTime ? timestampDate(message.revokeTime) : undefined,
    state: KEY_STATES.get(message.state) ?? "unspecified",
  };
}

// -- values ------------------------------------------------------------------------

/** A vector as a plain array of numbers. */
export function vectorValues(vector: VectorInput): number[] {
  if (typeof vector !== "object" || vector === null || typeof vector.length !== "number") {
    throw new TypeError(`a vector is an array of numbers, got ${typeof vector}`);
  }
  return Array.from(vector);
}

/**
 * Makes metadata JSON for a `Struct`: `Date`s become RFC 3339 UTC strings,
 * `undefined` entries are dropped, non-JSON values are refused (errors name
 * the value by `path`).
 */
export function metadataToJson(metadata: MetadataInput, path = "metadata"): JsonObject {
  const json = toJson(metadata, path);
  if (json === null || typeof json !== "object" || Array.isArray(json)) {
    throw new TypeError(`${path} must be an object`);
  }
  return json as JsonObject;
}

function toJson(value: MetadataValue | undefined, path: string): JsonValue {
  if (value === null || typeof value === "string" || typeof value === "boolean") return value;
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new TypeError(`${path}: JSON numbers are finite, got ${value}`);
    return value;
  }
  if (value instanceof Date) return rfc3339(value);
  if (Array.isArray(value)) return value.map((item: MetadataValue, i: number) => toJson(item, `${path}[${i}]`));
  if (typeof value === "object") {
    const out: JsonObject = {};
    for (const [key, item] of Object.entries(value as Record<string, MetadataValue | undefined>)) {
      if (item !== undefined) out[key] = toJson(item, `${path}.${key}`);
    }
    return out;
  }
  throw new TypeError(`${path}: metadata values must be JSON-like, got ${typeof value}`);
}

// -- documents -------------------------------------------------------------------------

/** Builds a `Document` message from a {@link DocumentInput}. */
export function documentToProto(doc: DocumentInput, position = 0): DocumentMessage {
  if (typeof doc !== "object" || doc === null) throw new TypeError(`document #${position} is not an object`);
  if (typeof doc.id !== "string") throw new TypeError(`document #${position}: id must be a string`);
  if (doc.vector === undefined) throw new TypeError(`document #${position} has no vector`);
  const metadata = doc.metadata ? metadataToJson(doc.metadata) : undefined;
  return create(DocumentSchema, {
    id: doc.id,
    vector: vectorValues(doc.vector),
    text: doc.text ?? "",
    ...(metadata !== undefined && Object.keys(metadata).length > 0 ? { metadata } : {}),
    tenant: doc.tenant ?? "",
  });
}

/** Builds an `UpsertRequest` (the unary, one-batch write). */
export function upsertRequest(collection: string, tenant: string, documents: DocumentMessage[]): UpsertRequest {
  return create(UpsertRequestSchema, { collection, tenant, documents });
}

/** The `selector` of a Delete or Update request; a TypeError naming `call` unless exactly one of `ids` and `filter` is given. */
export function selectorToProto(
  selector: DocumentSelector,
  call: "delete" | "update",
): { case: "ids"; value: IdCondition } | { case: "filter"; value: Filter } {
  const hasIds = selector.ids !== undefined;
  if (hasIds === (selector.filter !== undefined)) throw new TypeError(`${call} needs exactly one of ids and filter`);
  return hasIds
    ? { case: "ids", value: create(IdConditionSchema, { ids: [...selector.ids!] }) }
    : { case: "filter", value: toFilter(selector.filter!) };
}

/** Builds a `DeleteRequest`. */
export function deleteRequest(collection: string, tenant: string, selector: DocumentSelector): DeleteRequest {
  return create(DeleteRequestSchema, { collection, tenant, selector: selectorToProto(selector, "delete") });
}

/**
 * Builds an `UpdateRequest`. The parts of `change` left out stay unset, and
 * a given `setMetadata` is sent even when empty (`{}` with `replaceMetadata`
 * clears the metadata). Whether the change changes anything is the server's
 * to check.
 */
export function updateRequest(
  collection: string,
  tenant: string,
  selector: DocumentSelector,
  change: DocumentUpdate,
): UpdateRequest {
  if (typeof change !== "object" || change === null) throw new TypeError("update needs a change: { text, setMetadata, ... }");
  const init: MessageInitShape<typeof UpdateRequestSchema> = {
    collection,
    tenant,
    selector: selectorToProto(selector, "update"),
    replaceMetadata: change.replaceMetadata ?? false,
    deleteMetadataKeys: [...(change.deleteMetadataKeys ?? [])],
  };
  if (change.text !== undefined) init.text = change.text;
  if (change.setMetadata !== undefined) init.setMetadata = metadataToJson(change.setMetadata, "setMetadata");
  return create(UpdateRequestSchema, init);
}

/** Converts a `Document` message. */
export function documentFromProto(message: DocumentMessage): Document {
  const doc: Document = { id: message.id, text: message.text, metadata: message.metadata ?? {} };
  if (message.vector.length > 0) doc.vector = message.vector;
  if (message.tenant) doc.tenant = message.tenant;
  return doc;
}

/** Builds `Include`; undefined keeps the server's default. */
export function includeToProto(include: readonly IncludeField[] | undefined): Include | undefined {
  if (include === undefined) return undefined;
  const unknown = include.filter((field) => !INCLUDE_FIELDS.includes(field));
  if (unknown.length > 0) {
    throw new TypeError(`unknown include field(s) ${unknown.join(", ")}: expected ${INCLUDE_FIELDS.join(", ")}`);
  }
  return create(IncludeSchema, {
    text: include.includes("text"),
    metadata: include.includes("metadata"),
    vector: include.includes("vector"),
  });
}

// -- search -----------------------------------------------------------------------------

/** Builds `Fusion`; undefined keeps the server default (RRF). */
export function fusionToProto(fusion: FusionSpec | undefined): Fusion | undefined {
  if (fusion === undefined) return undefined;
  const spec = typeof fusion === "string" ? { method: fusion } : fusion;
  if (spec.method === "rrf") {
    const rrf = spec as { k?: number; vectorWeight?: number; textWeight?: number };
    return create(FusionSchema, {
      method: {
        case: "rrf",
        value: {
          ...(rrf.k !== undefined ? { k: rrf.k } : {}),
          ...(rrf.vectorWeight !== undefined ? { vectorWeight: rrf.vectorWeight } : {}),
          ...(rrf.textWeight !== undefined ? { textWeight: rrf.textWeight } : {}),
        },
      },
    });
  }
  if (spec.method === "relative_score") {
    const alpha = (spec as { alpha?: number }).alpha;
    return create(FusionSchema, {
      method: { case: "relativeScore", value: alpha !== undefined ? { alpha } : {} },
    });
  }
  throw new TypeError(`unknown fusion ${JSON.stringify(fusion)}: expected "rrf" or "relative_score"`);
}

/**
 * Builds a `SearchRequest`; needs at least one of `vector`, `text` and a
 * non-empty `exampleId`. Whether `vector` and `exampleId` come together is
 * the server's to refuse.
 */
export function searchRequest(collection: string, tenant: string | undefined, query: SearchQuery): SearchRequest {
  if (query.vector === undefined && query.text === undefined && !query.exampleId) {
    throw new TypeError("search needs a vector, a text or an exampleId (a text goes with either)");
  }
  const init: MessageInitShape<typeof SearchRequestSchema> = {
    collection,
    tenant: tenant ?? "",
    limit: count("limit", query.limit ?? 10),
    candidates: count("candidates", query.candidates ?? 0),
    offset: count("offset", query.offset ?? 0),
    exampleId: query.exampleId ?? "",
  };
  if (query.vector !== undefined) init.vector = vectorValues(query.vector);
  if (query.text !== undefined) init.text = query.text;
  if (query.filter !== undefined) init.filter = toFilter(query.filter);
  const fusion = fusionToProto(query.fusion);
  if (fusion) init.fusion = fusion;
  const include = includeToProto(query.include);
  if (include) init.include = include;
  if (query.scoreThreshold !== undefined) init.scoreThreshold = query.scoreThreshold;
  if (query.exact || query.efSearch) {
    init.params = { exact: query.exact ?? false, efSearch: count("efSearch", query.efSearch ?? 0) };
  }
  return create(SearchRequestSchema, init);
}

/**
 * A search option the request carries as a `uint32`: refused here, naming
 * it, unless it is a whole number from 0 to 2^32 - 1 (encoding would fail
 * otherwise, as an INTERNAL error that names no option).
 */
function count(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 0 || value > 0xffff_ffff) {
    throw new TypeError(`${name} must be a whole number from 0 to 4294967295, not ${value}`);
  }
  return value;
}

/** Converts a `SearchHit` message. */
export function hitFromProto(message: SearchHit): Hit {
  const hit: Hit = {
    id: message.id,
    score: message.score,
    ...(message.vectorLeg ? { vectorRank: message.vectorLeg.rank, vectorScore: message.vectorLeg.score } : {}),
    ...(message.textLeg ? { textRank: message.textLeg.rank, textScore: message.textLeg.score } : {}),
    text: message.text,
    metadata: message.metadata ?? {},
  };
  if (message.vector.length > 0) hit.vector = message.vector;
  if (message.tenant) hit.tenant = message.tenant;
  return hit;
}

// -- batches -----------------------------------------------------------------------------

/**
 * Bytes added to each document's encoded size when cutting batches (its tag
 * and length in the batch message), as in the Rust client.
 */
export const BATCH_DOCUMENT_OVERHEAD = 8;

/** A document's size in a batch, as counted against `batchBytes`: its encoded size plus 8. */
export function documentSize(doc: DocumentMessage): number {
  return encodedSize(doc) + BATCH_DOCUMENT_OVERHEAD;
}

/** Refuses batch limits that are not integers >= 1. */
export function checkBatchLimits(batchSize: number, batchBytes: number): void {
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new RangeError(`batchSize must be an integer >= 1, got ${batchSize}`);
  }
  if (!Number.isInteger(batchBytes) || batchBytes < 1) {
    throw new RangeError(`batchBytes must be an integer >= 1, got ${batchBytes}`);
  }
}

/**
 * Cuts a sync or async source into batches of at most `batchSize` items and
 * `batchBytes` bytes (by `sizeOf`; a larger item is a batch of its own),
 * reading it lazily. The cut depends only on the items and the limits (the
 * rule of the Rust client), so a resumed upsert finds its batches again.
 */
export async function* batched<T>(
  source: Iterable<T> | AsyncIterable<T>,
  batchSize: number,
  batchBytes: number,
  sizeOf: (item: T) => number,
): AsyncGenerator<T[], void, undefined> {
  let batch: T[] = [];
  let bytes = 0;
  for await (const item of source) {
    const size = sizeOf(item);
    if (batch.length > 0 && bytes + size > batchBytes) {
      yield batch;
      batch = [];
      bytes = 0;
    }
    batch.push(item);
    bytes += size;
    if (batch.length >= batchSize) {
      yield batch;
      batch = [];
      bytes = 0;
    }
  }
  if (batch.length > 0) yield batch;
}

/**
 * The protobuf encoding size of a `Document`, computed without encoding it
 * (equal to `toBinary(DocumentSchema, doc).length`).
 */
export function encodedSize(doc: DocumentMessage): number {
  let size = 0;
  if (doc.id !== "") size += stringField(doc.id);
  if (doc.vector.length > 0) size += lengthDelimited(4 * doc.vector.length);
  if (doc.text !== "") size += stringField(doc.text);
  if (doc.metadata !== undefined) size += lengthDelimited(structSize(doc.metadata));
  if (doc.tenant !== "") size += stringField(doc.tenant);
  return size;
}

/** google.protobuf.Struct: `map<string, Value> fields = 1`, each entry a message of key (1) and value (2). */
function structSize(object: JsonObject): number {
  let size = 0;
  for (const [key, value] of Object.entries(object)) {
    if (value === undefined) continue;
    size += lengthDelimited(stringField(key) + lengthDelimited(valueSize(value)));
  }
  return size;
}

/** google.protobuf.Value: a oneof, always written, with one-byte tags. */
function valueSize(value: JsonValue): number {
  if (value === null) return 2; // null_value = 1 (enum 0)
  switch (typeof value) {
    case "number":
      return 9; // number_value = 2 (double)
    case "boolean":
      return 2; // bool_value = 4
    case "string":
      return stringField(value); // string_value = 3
  }
  if (Array.isArray(value)) {
    let list = 0; // list_value = 6: `repeated Value values = 1`
    for (const item of value) list += lengthDelimited(valueSize(item));
    return lengthDelimited(list);
  }
  return lengthDelimited(structSize(value as JsonObject)); // struct_value = 5
}

/** A length-delimited field with a one-byte tag (field numbers below 16). */
function lengthDelimited(length: number): number {
  return 1 + varintSize(length) + length;
}

function stringField(value: string): number {
  return lengthDelimited(Buffer.byteLength(value, "utf8"));
}

function varintSize(value: number): number {
  let size = 1;
  while (value >= 128) {
    value = Math.floor(value / 128);
    size += 1;
  }
  return size;
}
