/**
 * Plain data types passed to and returned by the Fathom client.
 *
 * @module
 */

import type { JsonObject } from "@bufbuild/protobuf";
import type { FilterSpec } from "./filters.js";

/** A distance metric: cosine similarity, Euclidean distance or inner product. */
export type Metric = "cosine" | "l2" | "inner_product";

/**
 * The precision of the vectors an HNSW graph holds (the documents always keep
 * theirs in single precision, and every score is computed from those):
 *
 * - `"half"`: half-precision copies (pgvector `halfvec`): half the index size,
 *   faster builds and searches, the same recall on embeddings. Dimensions up
 *   to 4000; every vector component must lie within ±65504;
 * - `"single"`: single precision (pgvector `vector`), as collections created
 *   before half precision. Dimensions up to 2000.
 */
export type IndexPrecision = "half" | "single";

/**
 * A vector index: HNSW or none. HNSW parameters left out (or 0) mean the
 * server defaults: `m` 16, `efConstruction` 64, `precision` `"half"`.
 */
export type IndexSpec =
  | "hnsw"
  | "none"
  | { kind: "hnsw"; m?: number; efConstruction?: number; precision?: IndexPrecision }
  | { kind: "none" };

/**
 * When a collection's HNSW index is built. Inserting every row into an HNSW
 * graph is slow; building the graph once over rows already loaded, in bulk and
 * with PostgreSQL's parallel workers, is many times faster. So:
 *
 * - `"automatic"` (the default): the collection starts without its index and
 *   searches are exact scans, which is cheap while it is small. Once its
 *   vectors pass the server's indexing threshold (`fathom serve
 *   --indexing-threshold-kb`, 16 MiB by default: 5,462 vectors of 768
 *   dimensions), the index is built in bulk: at the end of the
 *   `Collection.upsert` (a stream) that passes it, which resolves only when
 *   the index is ready, or in the background after an `upsertBatch` that
 *   passes it. A bulk load needs no option to be fast and is searchable with
 *   its index when the call resolves. Batches inside one `upsert` never start
 *   a build.
 * - `"immediate"`: the index is created with the collection and every write
 *   maintains it: searches use the graph from the first document, and writes
 *   (bulk loads most of all) are many times slower. Pick it when searches must
 *   go through the graph from the first document (to measure its recall or
 *   `efSearch` on a small collection, say), or when writes should each pay
 *   their share of the index rather than one upsert paying for the build.
 * - `"on_request"`: the index is built only by `buildIndex` or by an upsert
 *   with `buildIndexAtEnd`; searches are exact until then. For an input loaded
 *   in several calls that should be indexed once, after the last (`deferIndex`
 *   is the older spelling of this).
 *
 * Collections with `index: "none"` ignore it.
 */
export type IndexBuild = "automatic" | "immediate" | "on_request";

/**
 * Whether a collection's vector index serves its searches:
 *
 * - `"ready"`: searches use the index, or the collection has none
 *   (`index: "none"`) and every search is exact by design;
 * - `"deferred"`: the index is not built, writes are fast and searches are
 *   exact scans: an `"automatic"` collection still below the server's
 *   indexing threshold, or an `"on_request"` one (or a build failed) that
 *   `buildIndex` has not built yet (see {@link IndexBuild});
 * - `"building"`: the index is being built; searches stay exact until it is
 *   ready;
 * - `"unspecified"`: the server did not say (one older than index states, or
 *   a state newer than this client).
 */
export type IndexState = "ready" | "deferred" | "building" | "unspecified";

/**
 * How a collection's keyword searches rank the documents that match:
 * - `"bm25"`: BM25 through the collection's `bm25` index (the server's
 *   PostgreSQL has the pg_textsearch extension, as the embedded one does); a
 *   hit's keyword score is its BM25 score;
 * - `"ts_rank"`: PostgreSQL's `ts_rank`, where pg_textsearch is not
 *   installed: documents with more of the query's words first;
 * - `"unspecified"`: the server did not say (one older than keyword rankings).
 */
export type KeywordRanking = "bm25" | "ts_rank" | "unspecified";

/** Settings of a new collection. */
export interface CreateCollectionOptions {
  /** How vectors are compared. Default `"cosine"`. */
  metric?: Metric;
  /** PostgreSQL text-search configuration. Default `"english"`. */
  language?: string;
  /** Whether every document and request names a tenant. Default false. */
  multiTenant?: boolean;
  /** The vector index. Default: HNSW with the server's defaults. */
  index?: IndexSpec;
  /**
   * The same as `indexBuild: "on_request"` (its older spelling). Refused
   * (INVALID_ARGUMENT) with `index: "none"`, and with another `indexBuild`
   * (on the field `index_build`). Default false.
   */
  deferIndex?: boolean;
  /**
   * When the HNSW index is built; see {@link IndexBuild}. Default
   * `"automatic"`: searches are exact while the collection is small, and the
   * `upsert` that takes it past the server's indexing threshold builds the
   * index in bulk at its end, so a bulk load is fast without an option.
   * `"immediate"`: the collection must search through its graph from its
   * first document, and every write pays for maintaining it. `"on_request"`:
   * load in several calls, then build once with `buildIndex` (or the last
   * upsert's `buildIndexAtEnd`).
   */
  indexBuild?: IndexBuild;
}

/** A collection's name and settings, as stored on the server. */
export interface CollectionInfo {
  name: string;
  dimension: number;
  metric: Metric;
  /**
   * The vector index. `precision` is always set by a server that knows index
   * precisions (undefined from an older one).
   */
  index: { kind: "hnsw"; m: number; efConstruction: number; precision?: IndexPrecision } | { kind: "none" };
  /** PostgreSQL text-search configuration, such as `"english"`. */
  language: string;
  multiTenant: boolean;
  createTime: Date | undefined;
  /** Whether the vector index is built (`"ready"`), `"deferred"` or `"building"`; see {@link IndexState}. */
  indexState: IndexState;
  /** `"bm25"` or `"ts_rank"`; see {@link KeywordRanking}. */
  keywordRanking: KeywordRanking;
  /**
   * When the HNSW index is built: `"automatic"`, `"immediate"` or
   * `"on_request"` (see {@link IndexBuild}); `"unspecified"` from a server
   * older than index builds.
   */
  indexBuild: IndexBuild | "unspecified";
}

/**
 * What an API key may do; each role includes the ones before it: `"read"`
 * (get, count, scroll, search, collections' settings), `"write"` (also
 * upsert, update, delete), `"admin"` (also create, delete and index
 * collections, and manage keys).
 */
export type KeyRole = "read" | "write" | "admin";

/**
 * Whether an API key is accepted: `"active"`, `"expired"` (past its
 * `expireTime`), `"revoked"`, or `"unspecified"` (the server did not say).
 */
export type KeyState = "active" | "expired" | "revoked" | "unspecified";

/** Options of `FathomClient.createKey`. */
export interface CreateKeyOptions {
  /** Bind the key to this tenant (default: any tenant). */
  tenant?: string;
  /** Bind the key to these collections (default: any collection). */
  collections?: readonly string[];
  /** When the key stops being accepted (default: never). */
  expiresAt?: Date;
  /** Or how long from now, in milliseconds (this machine's clock). */
  expiresInMs?: number;
}

/** An API key's record, as the server stores it: never its secret. */
export interface ApiKeyInfo {
  /** The key's public id: 12 hex digits, the part after `fathom_`. */
  id: string;
  /** The key's role (`"unspecified"`: one newer than this client). */
  role: KeyRole | "unspecified";
  /** The only tenant the key may touch (undefined: any). */
  tenant: string | undefined;
  /** The only collections the key may touch, sorted (empty: any). */
  collections: string[];
  description: string;
  createTime: Date | undefined;
  /** When the key stops being accepted (undefined: never). */
  expireTime: Date | undefined;
  /** When the key was revoked (undefined: it was not). */
  revokeTime: Date | undefined;
  /** Whether the key was accepted when the server answered. */
  state: KeyState;
}

/** A key just created: its text, returned only this once, and its record. */
export interface CreatedKey {
  /** The key's text, `fathom_<id>_<secret>`; the server keeps only its hash, so store it now. */
  key: string;
  /** The key's record, as `listKeys` shows it. */
  info: ApiKeyInfo;
}

/**
 * An alias: a second name of a collection, accepted wherever a collection's
 * name is, and switched to another collection at once.
 */
export interface Alias {
  alias: string;
  /** The collection it points at (a collection's own name). */
  collection: string;
  /** When it was created or last switched. */
  updateTime: Date | undefined;
}

/**
 * One change of `FathomClient.updateAliases`: create an alias pointing at a
 * collection, point an existing alias at another collection, or delete an
 * alias (its collection stays).
 */
export type AliasAction =
  | { kind: "create"; alias: string; collection: string }
  | { kind: "switch"; alias: string; collection: string }
  | { kind: "delete"; alias: string };

/** Options of `FathomClient.buildIndex`. */
export interface BuildIndexOptions {
  /** Stops waiting (the build goes on on the server). There is no deadline otherwise. */
  signal?: AbortSignal;
}

/** Document count and on-disk sizes of a collection. */
export interface CollectionStats {
  name: string;
  documentCount: number;
  tableBytes: number;
  indexBytes: number;
  totalBytes: number;
}

/** A metadata value: JSON, plus `Date` (stored as an RFC 3339 UTC string). */
export type MetadataValue =
  | string
  | number
  | boolean
  | null
  | Date
  | readonly MetadataValue[]
  | { readonly [key: string]: MetadataValue | undefined };

/** Metadata of a document to write. */
export type MetadataInput = { readonly [key: string]: MetadataValue | undefined };

/** A vector: an array of numbers or a typed array such as `Float32Array`. */
export type VectorInput = readonly number[] | Float32Array | Float64Array;

/** A document to write. */
export interface DocumentInput {
  /** 1 to 256 bytes of UTF-8; writing an existing id replaces the document. */
  id: string;
  /** Of the collection's dimension. */
  vector: VectorInput;
  /** Text for keyword search. */
  text?: string;
  /** JSON-like metadata, used by filters. */
  metadata?: MetadataInput;
  /** The tenant; if set, it must equal the stream's tenant. */
  tenant?: string;
}

/** A stored document, as returned by `get` and `scroll`. */
export interface Document {
  id: string;
  /** The vector, when included. */
  vector?: number[];
  /** The text (`""` when not included). */
  text: string;
  /** The metadata (`{}` when not included). */
  metadata: JsonObject;
  /** The tenant, in multi-tenant collections. */
  tenant?: string;
}

/** One search result. Per-leg fields are absent when that leg did not find the document. */
export interface Hit {
  id: string;
  /** Fused score for hybrid searches, otherwise the single leg's score. */
  score: number;
  /** 1-based rank among the vector leg's candidates. */
  vectorRank?: number;
  /** The vector leg's raw score (similarity, or distance for `l2`). */
  vectorScore?: number;
  /** 1-based rank among the keyword leg's candidates. */
  textRank?: number;
  /** The keyword leg's raw score (words held plus PostgreSQL `ts_rank`). */
  textScore?: number;
  /** The text (`""` when not included). */
  text: string;
  /** The metadata (`{}` when not included). */
  metadata: JsonObject;
  /** The vector, when included. */
  vector?: number[];
  /** The tenant, in multi-tenant collections. */
  tenant?: string;
}

/** Document fields a response may carry besides the id. */
export type IncludeField = "text" | "metadata" | "vector";

/** How a hybrid search fuses its legs. Unset means RRF with the server defaults. */
export type FusionSpec =
  | "rrf"
  | "relative_score"
  | { method: "rrf"; k?: number; vectorWeight?: number; textWeight?: number }
  | { method: "relative_score"; alpha?: number };

/** Options shared by every call on a collection. */
export interface CallOptions {
  /** Tenant override (multi-tenant collections). */
  tenant?: string;
  /** Cancels the call. */
  signal?: AbortSignal;
}

/**
 * A vector, keyword or hybrid search. At least one of `vector`, `text` and
 * `exampleId`.
 */
export interface SearchQuery extends CallOptions {
  /** Query vector (vector leg). Excludes `exampleId`. */
  vector?: VectorInput;
  /** Query text in web-search syntax (keyword leg). */
  text?: string;
  /**
   * Search by example ("more like this"): the vector leg's query is the
   * stored vector of the document with this id (in the call's tenant), and
   * that document is left out of the hits. Excludes `vector` (the server
   * refuses both with INVALID_ARGUMENT on `example_id`); goes with `text`
   * (hybrid) and `filter`. A document that does not exist fails the search
   * with NOT_FOUND. `""` means no example.
   */
  exampleId?: string;
  /** Only documents matching it are ranked, in every leg. */
  filter?: FilterSpec;
  /** Maximum number of hits, 1..=1000. Default 10. */
  limit?: number;
  /**
   * Skip this many of the best hits before the `limit` returned (paging:
   * page n from 0 is `offset: n * limit`). `offset + limit` is at most 1000
   * (else INVALID_ARGUMENT on `offset`). Hits are ordered by score, then id;
   * pages of one search over unchanged documents neither repeat nor skip a
   * hit when each ranks the same candidates, so set `candidates` (at least
   * the last page's `offset + limit`): its default grows with
   * `offset + limit`. Default 0.
   */
  offset?: number;
  /** Fusion of hybrid searches. */
  fusion?: FusionSpec;
  /** Fields to return (default: text and metadata). */
  include?: readonly IncludeField[];
  /** Candidates per leg before fusion (0: server default). */
  candidates?: number;
  /** Skip the vector index and compute exact distances. */
  exact?: boolean;
  /** HNSW search breadth. */
  efSearch?: number;
  /** Drop hits scoring worse than this. */
  scoreThreshold?: number;
}

/** Options of `Collection.upsert`. */
export interface UpsertOptions extends CallOptions {
  /** Most documents per batch (the server allows up to 1000). Default 500. */
  batchSize?: number;
  /**
   * Most encoded bytes per batch (each document counts its encoded size plus
   * 8). A larger document travels alone. Default 8 MiB.
   */
  batchBytes?: number;
  /**
   * Makes the upsert resumable, and exact: 1 to 128 ASCII letters, digits,
   * `-`, `_`, `.` and `:`. The server records how many documents of the input
   * are committed under it. Inside the call, a broken connection (UNAVAILABLE,
   * or the connection reset) is reopened and only what the server had not
   * committed is resent. Across calls, an upsert run again with the same
   * `streamId` and the same input reads past the documents an earlier run
   * committed without sending them (see {@link UpsertSummary.skippedDocuments}),
   * checks that their ids are the ones committed, and writes the rest. Any
   * batch size works: the server tracks documents by their position in the
   * input, not by batch, so each document is written once. Another input is
   * refused with `ResumeMismatchError` before anything is sent: a stream id
   * belongs to one input (and one collection and tenant); use a new one for
   * other data.
   */
  streamId?: string;
  /** Batches sent ahead of their acknowledgement. Default 4. */
  maxInFlight?: number;
  /**
   * If the collection's index is not built (`indexState` `"deferred"`), have
   * the server build it once every batch is acknowledged, and resolve only
   * when it is ready: a bulk load that is searchable with its index when the
   * call returns. An `"automatic"` collection (the default; see
   * {@link CreateCollectionOptions.indexBuild}) does so without it once the
   * upsert takes it past the server's indexing threshold; the option builds
   * the index below the threshold too, and in an `"on_request"` collection,
   * where it indexes an input loaded in several calls with the last one.
   * Nothing to do for a collection whose index is ready. Default false.
   */
  buildIndexAtEnd?: boolean;
  /** Called with the number of documents of each batch acknowledged, and once with the number skipped on resume. */
  onProgress?: (documents: number) => void;
}

/**
 * What an upsert did (the same fields as the Rust client's summary). When
 * nothing else writes under the stream id meanwhile (another client, or an
 * earlier run's write still committing after it was cancelled), every
 * document of the input is counted once: `committedDocuments ===
 * skippedDocuments + documentsWritten`. On a finished import into a fresh
 * collection, `committedDocuments` equals the number of documents the
 * collection holds. An upsert that throws reports the
 * same figures on the `UpsertError`.
 */
export interface UpsertSummary {
  /**
   * Documents of the input committed under the `streamId` at the end: all of
   * them, when the call returns. Without a `streamId`: the documents written
   * by the call.
   */
  committedDocuments: number;
  /**
   * Documents this call wrote: acknowledged after COMMIT, plus those of
   * batches found committed after a reconnect (or re-acknowledged as
   * committed) whose acknowledgement was lost with the connection.
   */
  documentsWritten: number;
  /**
   * Documents not sent because an earlier run with the same `streamId` had
   * committed them: the first `skippedDocuments` of the input, whose ids were
   * checked against the server's digest.
   */
  skippedDocuments: number;
  /** Batches this call wrote (acknowledged with writes, or found committed after a reconnect). */
  batches: number;
  /**
   * Batches the server acknowledged as committed earlier instead of writing
   * them: resent after a reconnect while the old connection's write was still
   * committing, or written by another client under the same `streamId`.
   */
  alreadyCommitted: number;
  /** How many times the stream was reopened after a broken connection. */
  reconnects: number;
  /** Wall time of the call in milliseconds. */
  elapsedMs: number;
}

/** Options of `Collection.get`. */
export interface GetOptions extends CallOptions {
  /** Fields to return (default: all). */
  include?: readonly IncludeField[];
}

/** Options of `Collection.scroll`. */
export interface ScrollOptions extends CallOptions {
  /** Only documents matching it. */
  filter?: FilterSpec;
  /** Fields to return (default: all). */
  include?: readonly IncludeField[];
  /** Stop after this many documents. */
  limit?: number;
  /** Start after this id (exclusive). */
  afterId?: string;
}

/**
 * Which documents `Collection.delete` and `Collection.update` act on: these
 * ids, or every document matching a filter (exactly one of the two).
 */
export type DocumentSelector = { ids: readonly string[]; filter?: never } | { filter: FilterSpec; ids?: never };

/** What `Collection.delete` removes. @deprecated Use {@link DocumentSelector}, the same type. */
export type DeleteSelector = DocumentSelector;

/**
 * What `Collection.update` does to each document it chooses; the vector and
 * every part left out stay as they are. At least one of `text`,
 * `setMetadata` and `deleteMetadataKeys` must be given (the server refuses
 * an update that changes nothing with INVALID_ARGUMENT).
 */
export interface DocumentUpdate {
  /** The new text, re-indexed for keyword search; `""` clears it. Left out, the text is kept. */
  text?: string;
  /**
   * Metadata to write, as in `DocumentInput.metadata`. By default a merge at
   * the top level: each key given replaces that key's value (nested objects
   * are replaced whole, not merged) and every other key is kept. With
   * `replaceMetadata`, the whole object is replaced.
   */
  setMetadata?: MetadataInput;
  /**
   * Replace each document's whole metadata with `setMetadata` (`{}` clears
   * it) instead of merging into it. Needs `setMetadata`; excludes
   * `deleteMetadataKeys`. Default false.
   */
  replaceMetadata?: boolean;
  /**
   * Top-level metadata keys to remove (keys a document lacks are ignored):
   * at most 1000, none also in `setMetadata`.
   */
  deleteMetadataKeys?: readonly string[];
}
