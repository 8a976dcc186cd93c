/**
 * The Fathom client: {@link FathomClient} and its {@link Collection} handles.
 *
 * @module
 */

import { create } from "@bufbuild/protobuf";
import { type CallOptions as ConnectCallOptions, type Client, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import type * as http2 from "node:http2";
import {
  BuildIndexRequestSchema,
  Collections,
  DeleteCollectionRequestSchema,
  GetCollectionRequestSchema,
  GetCollectionStatsRequestSchema,
  ListAliasesRequestSchema,
  ListCollectionsRequestSchema,
  UpdateAliasesRequestSchema,
} from "./gen/fathom/v1/collections_pb.js";
import {
  CountRequestSchema,
  type Document as DocumentMessage,
  Documents,
  GetRequestSchema,
  ScrollRequestSchema,
  type UpsertStreamRequest,
} from "./gen/fathom/v1/documents_pb.js";
import { Keys, ListKeysRequestSchema, RevokeKeyRequestSchema } from "./gen/fathom/v1/keys_pb.js";
import { Search, type SearchRequest } from "./gen/fathom/v1/search_pb.js";
import { resolveConnection, type TlsOptions } from "./connection.js";
import { ReadYourWrites } from "./consistency.js";
import * as convert from "./convert.js";
import { Code, FathomError, tlsHandshakeFailure, UpsertError } from "./errors.js";
import { type FilterSpec, toFilter } from "./filters.js";
import { Backoff, DEFAULT_RETRY_POLICY, NO_RETRIES, type RetryPolicy } from "./retry.js";
import type {
  ApiKeyInfo,
  Alias,
  AliasAction,
  BuildIndexOptions,
  CallOptions,
  CollectionInfo,
  CollectionStats,
  CreateCollectionOptions,
  CreatedKey,
  CreateKeyOptions,
  Document,
  DocumentInput,
  DocumentSelector,
  DocumentUpdate,
  GetOptions,
  Hit,
  KeyRole,
  ScrollOptions,
  SearchQuery,
  UpsertOptions,
  UpsertSummary,
} from "./types.js";
import {
  AsyncQueue,
  BatchCutter,
  DEFAULT_BATCH_BYTES,
  DEFAULT_BATCH_SIZE,
  nextBatch,
  protocolError,
  skipCommitted,
  UpsertSession,
} from "./upsert.js";

export { baseUrlOf } from "./connection.js";

/** Where `make run` serves Fathom. */
export const DEFAULT_ADDRESS = "127.0.0.1:50051";

const MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

/** Options of {@link FathomClient}. */
export interface ClientOptions {
  /** Deadline (ms) of unary calls and searches; 0 disables it. Default 30000. Streams have none. */
  timeoutMs?: number;
  /**
   * Sent on every call (streams too) as `authorization: Bearer <key>`.
   * Default `process.env.FATHOM_API_KEY`; `""` sends none.
   */
  apiKey?: string;
  /**
   * TLS: `true` (the system's roots), or a CA to trust instead and a client
   * certificate for mutual TLS (see {@link TlsOptions}). `host:port` with
   * `tls` means `https://host:port`; an `http://` URL with `tls` is an error.
   */
  tls?: boolean | TlsOptions;
  /** Further headers (gRPC metadata) sent with every call. */
  headers?: Record<string, string>;
  /** Options of the HTTP/2 session, for what {@link tls} cannot say (merged over it). */
  nodeOptions?: http2.ClientSessionOptions | http2.SecureClientSessionOptions;
  /** Use this transport instead of opening one (then `close` does nothing). */
  transport?: Transport;
  /**
   * Which failed calls are retried and how long to wait, over
   * {@link DEFAULT_RETRY_POLICY} (`NO_RETRIES` turns retries off). Reads,
   * `upsertBatch`, `delete`, `update`, `revokeKey`, the start of a search, scrolls and
   * resumable upserts are retried after UNAVAILABLE (or a broken connection)
   * and after a busy server's RESOURCE_EXHAUSTED, with jittered backoff
   * within a time budget; the table is `docs/retries.md`.
   */
  retry?: Partial<RetryPolicy>;
  /**
   * Send the newest consistency token of this client's writes with its reads
   * (get, count, scroll, search) that choose no consistency, so a server with
   * read replicas serves them from one that has replayed those writes, or
   * from the primary (`docs/scale.md`). Default `true`; `false`: reads are
   * eventual and may miss this client's latest writes while a replica lags.
   */
  readYourWrites?: boolean;
}


/**
 * A connection to a Fathom server over gRPC (HTTP/2).
 *
 * ```ts
 * const client = new FathomClient("127.0.0.1:50051");
 * const docs = await client.createCollection("articles", 3);
 * await docs.upsert([{ id: "a", vector: [1, 0, 0], text: "red fox" }]);
 * for await (const hit of docs.search({ vector: [1, 0, 0], text: "fox" })) console.log(hit);
 * client.close();
 * ```
 */
export class FathomClient {
  /** The server's base URL. */
  readonly baseUrl: string;
  /** @internal */ readonly collectionsRpc: Client<typeof Collections>;
  /** @internal */ readonly documentsRpc: Client<typeof Documents>;
  /** @internal */ readonly searchRpc: Client<typeof Search>;
  /** @internal */ readonly keysRpc: Client<typeof Keys>;
  /** @internal */ readonly timeoutMs: number;
  /** @internal */ readonly headers: Record<string, string>;
  /** @internal */ readonly retry: RetryPolicy;
  /** @internal The newest consistency token of this client's writes. */ readonly consistency: ReadYourWrites;
  private readonly sessions: Http2SessionManager | undefined;

  /**
   * @param address `host:port` (plaintext unless `tls` is given) or a URL (`https://` for TLS). Default {@link DEFAULT_ADDRESS}.
   * @param options Timeouts, API key, TLS, headers or a custom transport.
   */
  constructor(address: string = DEFAULT_ADDRESS, options: ClientOptions = {}) {
    const connection = resolveConnection(address, options);
    this.baseUrl = connection.baseUrl;
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.headers = connection.headers;
    this.retry = { ...DEFAULT_RETRY_POLICY, ...options.retry };
    this.consistency = new ReadYourWrites(options.readYourWrites ?? true);
    let transport = options.transport;
    if (transport === undefined) {
      this.sessions = new Http2SessionManager(this.baseUrl, {}, connection.nodeOptions);
      transport = createGrpcTransport({
        baseUrl: this.baseUrl,
        sessionManager: this.sessions,
        readMaxBytes: MAX_MESSAGE_BYTES,
        writeMaxBytes: MAX_MESSAGE_BYTES,
      });
    }
    this.collectionsRpc = createClient(Collections, transport);
    this.documentsRpc = createClient(Documents, transport);
    this.searchRpc = createClient(Search, transport);
    this.keysRpc = createClient(Keys, transport);
  }

  /**
   * The newest consistency token this client's writes were acknowledged with
   * (`undefined` before the first): what its reads send unless
   * `readYourWrites: false`. Another client reads these writes by sending it
   * as a request's `consistency.afterToken`.
   */
  get consistencyToken(): string | undefined {
    return this.consistency.token;
  }

  /** Closes the HTTP/2 connection. Calls still running fail. */
  close(): void {
    this.sessions?.abort();
  }

  /**
   * Creates a collection and returns a handle to it.
   *
   * @param name 1 to 48 lower-case ASCII letters, digits and underscores, starting with a letter.
   * @param dimension Vector length, 1..=16000 (1..=4000 with HNSW, 1..=2000
   *   with HNSW at `precision: "single"`).
   * @param options Metric, language, tenancy, index, and `indexBuild`: when
   *   the HNSW index is built (default `"automatic"`, which makes bulk loads
   *   fast without an option; see {@link CreateCollectionOptions.indexBuild}).
   * @throws FathomError INVALID_ARGUMENT (with violations; `deferIndex` with
   *   another `indexBuild` names the field `index_build`) or ALREADY_EXISTS.
   */
  async createCollection(name: string, dimension: number, options: CreateCollectionOptions = {}): Promise<Collection> {
    const request = convert.createCollectionRequest(name, dimension, options);
    await this.unary(() => this.collectionsRpc.createCollection(request, this.callOptions()), undefined, false);
    return new Collection(this, name);
  }

  /**
   * Returns a handle to collection `name`, creating it first if it does not exist.
   *
   * Safe to run on every start of a program, and concurrently: when the
   * collection exists, only its dimension, metric and tenancy are checked (its
   * index, index build, index state and language are left as they are).
   *
   * @throws FathomError ALREADY_EXISTS if the existing collection has another
   *   dimension, metric or tenancy; INVALID_ARGUMENT as {@link createCollection}.
   */
  async getOrCreateCollection(name: string, dimension: number, options: CreateCollectionOptions = {}): Promise<Collection> {
    try {
      return await this.createCollection(name, dimension, options);
    } catch (error) {
      if (!(error instanceof FathomError) || error.code !== Code.AlreadyExists) throw error;
    }
    const existing = await this.getCollection(name);
    const metric = options.metric ?? "cosine";
    const multiTenant = options.multiTenant ?? false;
    if (existing.dimension !== dimension || existing.metric !== metric || existing.multiTenant !== multiTenant) {
      const tenancy = (multi: boolean) => (multi ? "multi-tenant" : "single-tenant");
      throw new FathomError(
        Code.AlreadyExists,
        `collection "${name}" exists with dimension ${existing.dimension}, metric ${existing.metric}, ` +
          `${tenancy(existing.multiTenant)}; asked for dimension ${dimension}, metric ${metric}, ${tenancy(multiTenant)}`,
      );
    }
    return new Collection(this, name);
  }

  /** Returns a handle to an existing collection (no call is made). */
  collection(name: string, tenant?: string): Collection {
    return new Collection(this, name, tenant);
  }

  /** Returns a collection's settings. @throws FathomError NOT_FOUND. */
  async getCollection(name: string): Promise<CollectionInfo> {
    const request = create(GetCollectionRequestSchema, { name });
    const response = await this.unary(() => this.collectionsRpc.getCollection(request, this.callOptions()));
    if (!response.collection) throw protocolError("GetCollection returned no collection");
    return convert.collectionInfo(response.collection);
  }

  /** Returns every collection, ordered by name. */
  async listCollections(): Promise<CollectionInfo[]> {
    const request = create(ListCollectionsRequestSchema);
    const response = await this.unary(() => this.collectionsRpc.listCollections(request, this.callOptions()));
    return response.collections.map(convert.collectionInfo);
  }

  /**
   * Drops a collection and all its documents, and deletes its aliases (named
   * by an alias: the collection the alias points at). @throws FathomError NOT_FOUND.
   */
  async deleteCollection(name: string): Promise<void> {
    const request = create(DeleteCollectionRequestSchema, { name });
    await this.unary(() => this.collectionsRpc.deleteCollection(request, this.callOptions()), undefined, false);
  }

  /** Returns a collection's document count (all tenants) and sizes. */
  async collectionStats(name: string): Promise<CollectionStats> {
    const request = create(GetCollectionStatsRequestSchema, { name });
    return convert.collectionStats(
      await this.unary(() => this.collectionsRpc.getCollectionStats(request, this.callOptions())),
    );
  }

  /**
   * Builds a collection's vector index now, if it is not built yet
   * (`indexState` `"deferred"`: an `"on_request"` collection, or an
   * `"automatic"` one below the indexing threshold; see
   * {@link CreateCollectionOptions.indexBuild}), and resolves with the
   * collection once the index is ready, with `indexState` `"ready"`.
   *
   * The server builds it in bulk, with PostgreSQL's parallel maintenance
   * workers; an index that is ready already resolves at once. Writes and
   * searches go on meanwhile, and searches are exact until the index is
   * ready. The call has no deadline (a build over millions of vectors takes
   * minutes); aborting `signal` stops waiting, and the build goes on: calling
   * again waits for it.
   *
   * @throws FathomError NOT_FOUND.
   */
  async buildIndex(name: string, options: BuildIndexOptions = {}): Promise<CollectionInfo> {
    const request = create(BuildIndexRequestSchema, { name });
    const response = await this.unary(
      () => this.collectionsRpc.buildIndex(request, this.callOptions(options.signal, false)),
      options.signal,
    );
    if (!response.collection) throw protocolError("BuildIndex returned no collection");
    return convert.collectionInfo(response.collection);
  }

  /**
   * Creates an API key and resolves with its text, returned only this once,
   * and its record. Needs an admin key; an admin key bound to a tenant or
   * collections, or expiring, may create only keys no wider than itself.
   * Not retried: a retry after a lost answer would create a second key.
   *
   * @param role `"read"`, `"write"` or `"admin"`.
   * @param description What the key is for (1 to 256 characters).
   * @param options Tenant and collections to bind it to, and its expiry.
   * @throws FathomError INVALID_ARGUMENT (with violations naming the field),
   *   PERMISSION_DENIED (not an admin key, or a key wider than the caller's:
   *   the message starts with the field).
   */
  async createKey(role: KeyRole, description: string, options: CreateKeyOptions = {}): Promise<CreatedKey> {
    const request = convert.createKeyRequest(role, description, options);
    const response = await this.unary(() => this.keysRpc.createKey(request, this.callOptions()), undefined, false);
    if (!response.apiKey) throw protocolError("CreateKey returned no key record");
    return { key: response.key, info: convert.apiKeyInfo(response.apiKey) };
  }

  /** Returns the API keys the client's key may manage, revoked and expired ones too, oldest first; never their secrets. */
  async listKeys(): Promise<ApiKeyInfo[]> {
    const request = create(ListKeysRequestSchema);
    const response = await this.unary(() => this.keysRpc.listKeys(request, this.callOptions()));
    return response.keys.map(convert.apiKeyInfo);
  }

  /**
   * Revokes the API key `id` (12 hex digits, as {@link listKeys} shows it)
   * and resolves with its record. Revoking a revoked key succeeds and changes
   * nothing, so the call is retried.
   *
   * @throws FathomError NOT_FOUND (no such key, or not the client's key's to
   *   manage), INVALID_ARGUMENT (not an id).
   */
  async revokeKey(id: string): Promise<ApiKeyInfo> {
    const request = create(RevokeKeyRequestSchema, { id });
    const response = await this.unary(() => this.keysRpc.revokeKey(request, this.callOptions()));
    if (!response.apiKey) throw protocolError("RevokeKey returned no key record");
    return convert.apiKeyInfo(response.apiKey);
  }

  /**
   * Creates, switches and deletes aliases: second names of collections,
   * accepted wherever a collection's name is. The actions apply in order, in
   * one transaction: all of them, or none if one is refused. A blue-green
   * re-index fills a new collection, then switches the alias:
   *
   * ```ts
   * await client.updateAliases([{ kind: "switch", alias: "docs", collection: "docs_v2" }]);
   * ```
   *
   * Not retried: a retry after a lost answer would be refused for changes
   * that were made. Resolves with the aliases the actions name that exist
   * afterwards, by name.
   *
   * @throws FathomError INVALID_ARGUMENT (no actions, a bad name), NOT_FOUND
   * (an alias to switch or delete, or a target collection, is missing),
   * ALREADY_EXISTS (the alias exists, or a collection has its name); its
   * `violations` name the action's field, such as `actions[1].switch_alias.collection`.
   * @throws TypeError an action of another kind.
   */
  async updateAliases(actions: readonly AliasAction[], options: { signal?: AbortSignal } = {}): Promise<Alias[]> {
    const request = create(UpdateAliasesRequestSchema, { actions: actions.map(convert.aliasActionToProto) });
    const response = await this.unary(
      () => this.collectionsRpc.updateAliases(request, this.callOptions(options.signal)),
      options.signal,
      false,
    );
    return response.aliases.map(convert.aliasFromProto);
  }

  /**
   * Returns the aliases, ordered by name: all of them, or those of
   * `collection` (named by its own name or an alias). @throws FathomError
   * NOT_FOUND if that collection does not exist.
   */
  async listAliases(collection?: string): Promise<Alias[]> {
    const request = create(ListAliasesRequestSchema, { collection: collection ?? "" });
    const response = await this.unary(() => this.collectionsRpc.listAliases(request, this.callOptions()));
    return response.aliases.map(convert.aliasFromProto);
  }

  /** @internal Per-call options: deadline, headers, signal. */
  callOptions(signal?: AbortSignal, timeout = true): ConnectCallOptions {
    const options: ConnectCallOptions = { headers: this.headers };
    if (timeout && this.timeoutMs > 0) options.timeoutMs = this.timeoutMs;
    if (signal) options.signal = signal;
    return options;
  }

  /**
   * @internal Runs a unary call, translating errors (`signal`: the call's, if
   * any); with `retried` (calls the retry table retries: not CreateCollection,
   * DeleteCollection nor CreateKey), retries it as the client's policy says.
   */
  async unary<T>(call: () => Promise<T>, signal?: AbortSignal, retried = true): Promise<T> {
    const backoff = Backoff.call(retried ? this.retry : NO_RETRIES);
    for (;;) {
      try {
        const response = await call();
        this.consistency.observeResponse(response);
        return response;
      } catch (error) {
        const failure = callError(error, signal);
        const pause = signal?.aborted ? undefined : backoff.nextPauseMs(failure);
        if (pause === undefined) throw failure;
        await sleep(pause);
      }
    }
  }

  /** @internal Runs an upsert session, reopening a resumable stream after a failure the retry table retries (see {@link UpsertSession.canReconnect}). */
  async upsert(
    session: UpsertSession,
    source: AsyncIterator<DocumentMessage>,
    cutter: BatchCutter<DocumentMessage>,
    signal: AbortSignal | undefined,
  ): Promise<UpsertSummary> {
    const backoff = Backoff.stream(this.retry);
    for (;;) {
      const progressBefore = session.acks;
      try {
        await this.upsertOnce(session, source, cutter, signal);
        return session.finish();
      } catch (error) {
        if (error instanceof UpsertError) throw error; // refusals, mismatches, input errors
        if (error instanceof FathomError) throw session.failed(error); // protocol errors
        if (!(error instanceof ConnectError)) throw error;
        const failure = callError(error, signal);
        if (session.acks > progressBefore) backoff.progressed();
        const pause = session.canReconnect(failure) && !signal?.aborted ? backoff.nextPauseMs(failure) : undefined;
        if (pause !== undefined) {
          await sleep(pause);
          session.summary.reconnects += 1;
          continue;
        }
        throw session.failed(failure);
      }
    }
  }

  private async upsertOnce(
    session: UpsertSession,
    source: AsyncIterator<DocumentMessage>,
    cutter: BatchCutter<DocumentMessage>,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    const outbox = new AsyncQueue<UpsertStreamRequest>();
    const own = new AbortController();
    const callSignal = signal ? AbortSignal.any([signal, own.signal]) : own.signal;
    const responses = this.documentsRpc
      .upsertStream(outbox, this.callOptions(callSignal, false))
      [Symbol.asyncIterator]();
    let finished = false;
    try {
      outbox.push(session.openRequest());
      const opened = await responses.next();
      if (opened.done) throw protocolError("the stream ended before `opened`");
      for (const resend of session.onOpened(opened.value)) outbox.push(resend);
      await skipCommitted(session, source);
      for (;;) {
        if (session.windowOpen) {
          const documents = await nextBatch(session, source, cutter);
          if (documents !== undefined) {
            // batchRequest puts the batch in the window before it is queued:
            // if the stream breaks, it is resent.
            outbox.push(session.batchRequest(documents));
            continue;
          }
        }
        if (session.sendingDone) break;
        const ack = await responses.next();
        if (ack.done) throw protocolError("the stream ended early");
        session.onAck(ack.value);
        this.consistency.observeResponse(ack.value.response.value);
      }
      outbox.close();
      for (;;) {
        const ack = await responses.next();
        if (ack.done) break;
        session.onAck(ack.value);
        this.consistency.observeResponse(ack.value.response.value);
      }
      session.ended();
      finished = true;
    } finally {
      outbox.close();
      if (!finished) own.abort();
    }
  }
}

/**
 * A handle to one collection; get one from {@link FathomClient.collection} or
 * {@link FathomClient.createCollection}. Every method accepts a `tenant`
 * option overriding the handle's tenant (needed in multi-tenant collections).
 */
export class Collection {
  constructor(
    /** The client the handle uses. */
    readonly client: FathomClient,
    /** The collection's name. */
    readonly name: string,
    /** Default tenant of the handle's requests. */
    readonly tenant?: string,
  ) {}

  /** Returns a handle to the same collection with another default tenant. */
  withTenant(tenant: string | undefined): Collection {
    return new Collection(this.client, this.name, tenant);
  }

  /** Returns the collection's settings. */
  info(): Promise<CollectionInfo> {
    return this.client.getCollection(this.name);
  }

  /** Returns the document count (all tenants) and on-disk sizes. */
  stats(): Promise<CollectionStats> {
    return this.client.collectionStats(this.name);
  }

  /** Builds the collection's deferred vector index and resolves once it is ready; see {@link FathomClient.buildIndex}. */
  buildIndex(options: BuildIndexOptions = {}): Promise<CollectionInfo> {
    return this.client.buildIndex(this.name, options);
  }

  /**
   * Writes documents through one bidirectional `UpsertStream`; existing ids
   * are replaced. The source may be any (async) iterable, read lazily: it is
   * cut into batches of at most `batchSize` documents and `batchBytes` bytes,
   * with at most `maxInFlight` batches awaiting acknowledgement, so memory
   * stays bounded. Every acknowledged batch is committed.
   *
   * With a `streamId` the upsert resumes exactly: after a broken connection
   * inside the call, and across calls (run again with the same `streamId` and
   * the same input, with any batch size, it skips the documents an earlier
   * run committed after checking their ids; see {@link UpsertOptions.streamId}).
   * If the source throws (or a document cannot be converted), the batch being
   * built is not sent, the batches already sent are acknowledged, and an
   * `UpsertInputError` with the exact `committedDocuments` is thrown (the
   * source's error is its `cause`). If `signal` aborts, the stream is
   * cancelled; the acknowledged batches stay committed.
   *
   * @returns An {@link UpsertSummary}.
   * @throws UpsertRejectedError a batch was refused (with violations); nothing of it was written, the batches before it were.
   * @throws ResumeMismatchError the stream id has other data committed; nothing was sent.
   * @throws UpsertInputError reading the source failed.
   * @throws UpsertError the stream failed (e.g. NOT_FOUND, CANCELED, or UNAVAILABLE after the reconnect attempts).
   *   Every upsert error carries `committedDocuments` and `documentsWritten`.
   * @throws RangeError a limit is not an integer >= 1.
   */
  async upsert(
    documents: Iterable<DocumentInput> | AsyncIterable<DocumentInput>,
    options: UpsertOptions = {},
  ): Promise<UpsertSummary> {
    const batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE;
    const batchBytes = options.batchBytes ?? DEFAULT_BATCH_BYTES;
    convert.checkBatchLimits(batchSize, batchBytes);
    const session = new UpsertSession(
      this.name,
      this.tenantOf(options),
      options.streamId ?? "",
      options.maxInFlight ?? 4,
      options.onProgress,
      options.buildIndexAtEnd ?? false,
    );
    const source = toMessages(documents);
    const cutter = new BatchCutter<DocumentMessage>(batchSize, batchBytes, convert.documentSize);
    try {
      return await this.client.upsert(session, source, cutter, options.signal);
    } finally {
      await source.return(undefined).catch(() => undefined);
    }
  }

  /**
   * Writes one batch with the unary `Upsert` RPC, in one transaction, and
   * returns the number of documents written. All or nothing: invalid input
   * throws a {@link FathomError} INVALID_ARGUMENT (RESOURCE_EXHAUSTED for a
   * size limit) with violations such as `documents[3].vector`, and nothing is
   * written. The batch must fit the server's limits (1000 documents by
   * default, distinct ids); for more, use {@link upsert}.
   */
  async upsertBatch(documents: Iterable<DocumentInput>, options: CallOptions = {}): Promise<number> {
    const messages = [...documents].map((doc, position) => convert.documentToProto(doc, position));
    const request = convert.upsertRequest(this.name, this.tenantOf(options), messages);
    const response = await this.client.unary(() =>
      this.client.documentsRpc.upsert(request, this.client.callOptions(options.signal)),
      options.signal,
    );
    return response.documentsWritten;
  }

  /** Deletes documents by ids or by filter; returns how many went. */
  async delete(selector: DocumentSelector, options: CallOptions = {}): Promise<number> {
    const request = convert.deleteRequest(this.name, this.tenantOf(options), selector);
    const response = await this.client.unary(() =>
      this.client.documentsRpc.delete(request, this.client.callOptions(options.signal)),
      options.signal,
    );
    return Number(response.deleted);
  }

  /**
   * Changes the text or metadata of the documents chosen by ids or by filter,
   * without resending their vectors: one change applied to every chosen
   * document, in one transaction. Returns how many documents were changed;
   * ids that do not exist are skipped, never created.
   *
   * ```ts
   * await docs.update({ ids: ["a"] }, { setMetadata: { status: "read" } });   // merged: other keys stay
   * await docs.update({ filter: { lang: "en" } }, { deleteMetadataKeys: ["draft"] });
   * await docs.update({ ids: ["b"] }, { text: "new text", setMetadata: {}, replaceMetadata: true });
   * ```
   *
   * Setting the same values again changes nothing more, so the call is
   * retried like {@link delete}.
   *
   * @throws TypeError unless exactly one of `ids` and `filter` is given.
   * @throws FathomError INVALID_ARGUMENT with violations when the change
   *   changes nothing or breaks a rule of {@link DocumentUpdate}
   *   (`replace_metadata`, `delete_metadata_keys[0]`, `text`, ...);
   *   RESOURCE_EXHAUSTED `set_metadata` when a document's merged metadata
   *   would exceed the server's limit. Either way nothing is changed.
   */
  async update(selector: DocumentSelector, change: DocumentUpdate, options: CallOptions = {}): Promise<number> {
    const request = convert.updateRequest(this.name, this.tenantOf(options), selector, change);
    const response = await this.client.unary(() =>
      this.client.documentsRpc.update(request, this.client.callOptions(options.signal)),
      options.signal,
    );
    return Number(response.updated);
  }

  /** Counts the documents matching a filter (all, if none). */
  async count(filter?: FilterSpec, options: CallOptions = {}): Promise<number> {
    const request = create(CountRequestSchema, {
      collection: this.name,
      tenant: this.tenantOf(options),
      ...(filter !== undefined ? { filter: toFilter(filter) } : {}),
    });
    this.client.consistency.fill(request);
    const response = await this.client.unary(() =>
      this.client.documentsRpc.count(request, this.client.callOptions(options.signal)),
      options.signal,
    );
    return Number(response.count);
  }

  /** Returns the documents with these ids, in that order; missing ids are left out. */
  async get(ids: readonly string[], options: GetOptions = {}): Promise<Document[]> {
    const include = convert.includeToProto(options.include);
    const request = create(GetRequestSchema, {
      collection: this.name,
      tenant: this.tenantOf(options),
      ids: [...ids],
      ...(include ? { include } : {}),
    });
    this.client.consistency.fill(request);
    const response = await this.client.unary(() =>
      this.client.documentsRpc.get(request, this.client.callOptions(options.signal)),
      options.signal,
    );
    return response.documents.map(convert.documentFromProto);
  }

  /**
   * Iterates every document matching the filter, in id order, exactly once.
   * After a failure the retry table retries (the connection dropped, the
   * server was busy), the scroll resumes after the last document received.
   * Breaking out of the loop cancels the call.
   */
  scroll(options: ScrollOptions = {}): AsyncGenerator<Document, void, undefined> {
    const filter = options.filter !== undefined ? toFilter(options.filter) : undefined;
    const include = convert.includeToProto(options.include);
    return this.scrollFrom(options, filter, include);
  }

  private async *scrollFrom(
    options: ScrollOptions,
    filter: ReturnType<typeof toFilter> | undefined,
    include: ReturnType<typeof convert.includeToProto>,
  ): AsyncGenerator<Document, void, undefined> {
    let received = 0;
    const backoff = Backoff.stream(this.client.retry);
    let lastId = options.afterId ?? "";
    for (;;) {
      const remaining = options.limit === undefined ? 0 : options.limit - received;
      if (options.limit !== undefined && remaining <= 0) return;
      const request = create(ScrollRequestSchema, {
        collection: this.name,
        tenant: this.tenantOf(options),
        afterId: lastId,
        limit: BigInt(remaining),
        ...(filter ? { filter } : {}),
        ...(include ? { include } : {}),
      });
      this.client.consistency.fill(request);
      try {
        for await (const response of this.client.documentsRpc.scroll(request, this.client.callOptions(options.signal, false))) {
          if (!response.document) continue;
          const document = convert.documentFromProto(response.document);
          lastId = document.id;
          received += 1;
          backoff.progressed();
          yield document;
        }
        return;
      } catch (error) {
        const fathomError = callError(error, options.signal);
        const pause = options.signal?.aborted ? undefined : backoff.nextPauseMs(fathomError);
        if (pause === undefined) throw fathomError;
        await sleep(pause);
      }
    }
  }

  /**
   * Vector, keyword or hybrid search, streaming hits best first. The vector
   * may be a stored document's (`exampleId`: "more like this", without that
   * document); `offset` pages through the hits (see {@link SearchQuery}).
   *
   * ```ts
   * for await (const hit of docs.search({ vector, text: "fox", filter: { lang: "en" } })) { ... }
   * const page2 = await docs.searchAll({ exampleId: "doc-7", limit: 10, offset: 10, candidates: 100 });
   * ```
   *
   * @throws TypeError none of `vector`, `text` and `exampleId` is given (before any call).
   */
  search(query: SearchQuery): AsyncGenerator<Hit, void, undefined> {
    return this.hits(convert.searchRequest(this.name, this.tenantOf(query), query), query.signal);
  }

  /** Like {@link search}, collecting the hits into an array. */
  async searchAll(query: SearchQuery): Promise<Hit[]> {
    const hits: Hit[] = [];
    for await (const hit of this.search(query)) hits.push(hit);
    return hits;
  }

  /** The hits of a search; starting it is retried as the retry table says, hits once yielded are not taken back. */
  private async *hits(request: SearchRequest, signal: AbortSignal | undefined): AsyncGenerator<Hit, void, undefined> {
    const backoff = Backoff.call(this.client.retry);
    this.client.consistency.fill(request);
    for (;;) {
      let started = false;
      try {
        for await (const hit of this.client.searchRpc.search(request, this.client.callOptions(signal))) {
          started = true;
          yield convert.hitFromProto(hit);
        }
        return;
      } catch (error) {
        const failure = callError(error, signal);
        const pause = started || signal?.aborted ? undefined : backoff.nextPauseMs(failure);
        if (pause === undefined) throw failure;
        await sleep(pause);
      }
    }
  }

  private tenantOf(options: CallOptions): string {
    return options.tenant ?? this.tenant ?? "";
  }
}

async function* toMessages(
  documents: Iterable<DocumentInput> | AsyncIterable<DocumentInput>,
): AsyncGenerator<DocumentMessage> {
  let position = 0;
  for await (const doc of documents) {
    yield convert.documentToProto(doc, position);
    position += 1;
  }
}

/**
 * Translates an error of a call into a {@link FathomError}. Node's HTTP/2
 * client reports the streams of a connection that was lost (reset, closed)
 * as closed with code CANCEL, which Connect maps to CANCELED: when the
 * caller did not abort the call, that is UNAVAILABLE, as in the other clients.
 * So is a failed TLS handshake, which Connect reports as INTERNAL.
 */
function callError(error: unknown, signal: AbortSignal | undefined): FathomError {
  const handshake = tlsHandshakeFailure(error);
  if (handshake !== undefined) return new FathomError(Code.Unavailable, handshake, [], error);
  const fathomError = FathomError.from(error);
  if (fathomError.code === Code.Canceled && !signal?.aborted) {
    return new FathomError(
      Code.Unavailable,
      `the connection was lost (${fathomError.rawMessage})`,
      fathomError.violations,
      fathomError.cause,
    );
  }
  return fathomError;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
