/**
 * Bookkeeping of an `UpsertStream` call, independent of I/O: skipping what an
 * earlier run of the same stream id committed (checking the ids of what it
 * skips), placing every batch in the input (`firstPosition`), bounding how
 * many batches are in flight, matching acks, and deciding what to resend
 * after a reconnect. The driver lives in `client.ts`.
 *
 * The protocol is the same in the Rust, Python and TypeScript clients. The
 * server records, per stream id, how many documents of the input are
 * committed (C), the id of the last one and a SHA-256 chain over their ids. A
 * run that opens the stream with C > 0 reads the first C documents of its
 * input without sending them, computes the same chain over their ids and
 * refuses to go on if it differs (`ResumeMismatchError`). Batches are then
 * cut from position C however the caller likes: the server writes each
 * document once, whatever the batch boundaries.
 *
 * @internal
 * @module
 */

import { createHash } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import {
  type BatchAck,
  type Document as DocumentMessage,
  type UpsertBatch,
  UpsertBatchSchema,
  type UpsertStreamRequest,
  UpsertStreamRequestSchema,
  type UpsertStreamResponse,
} from "./gen/fathom/v1/documents_pb.js";
import { FathomError, ResumeMismatchError, UpsertError, UpsertInputError, UpsertRejectedError } from "./errors.js";
import { isRetryable } from "./retry.js";
import type { UpsertSummary } from "./types.js";

export { isTransportFailure } from "./retry.js";

/** Most documents per batch by default (the server's limit is 1000). */
export const DEFAULT_BATCH_SIZE = 500;

/** Most encoded bytes per batch by default, as the Rust client. */
export const DEFAULT_BATCH_BYTES = 8 * 1024 * 1024;

/** The ids digest of zero documents: 32 zero bytes. */
export const EMPTY_DIGEST: Uint8Array = new Uint8Array(32);

/** One step of the ids digest: SHA-256(digest || UTF-8 bytes of the id). */
export function nextIdsDigest(digest: Uint8Array, id: string): Uint8Array {
  return createHash("sha256").update(digest).update(id, "utf8").digest();
}

/**
 * The ids digest of documents with these ids, in input order (as the
 * server's `StreamOpened.idsDigest`): d(0) is 32 zero bytes and
 * d(i+1) = SHA-256(d(i) || UTF-8 bytes of id(i)).
 */
export function idsDigest(ids: Iterable<string>): Uint8Array {
  let digest = EMPTY_DIGEST;
  for (const id of ids) digest = nextIdsDigest(digest, id);
  return digest;
}

/** An error for a server that broke the UpsertStream protocol. */
export function protocolError(message: string): FathomError {
  return new FathomError(Code.Internal, `UpsertStream protocol error: ${message}`);
}

/** A batch in the in-flight window. */
interface Sent {
  batch: UpsertBatch;
  firstPosition: number;
  count: number;
  lastId: string;
  /** Sent again after a reconnect. */
  resent?: boolean;
}

const endOf = (sent: Sent): number => sent.firstPosition + sent.count;

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

/**
 * State of one upsert call, possibly spanning several streams.
 *
 * The driver opens a stream, hands the first response to {@link onOpened}
 * (and sends what it returns), feeds the documents to {@link skip} while
 * {@link skipping}, then cuts batches and sends {@link batchRequest} while
 * {@link windowOpen}, feeding every ack to {@link onAck}. After a broken
 * connection it asks {@link canReconnect} and opens a new stream (resending
 * what {@link onOpened} returns). {@link finish} returns the summary or throws
 * the upsert's error; {@link failed} turns a stream error into the
 * `UpsertError` to throw.
 */
export class UpsertSession {
  readonly summary: UpsertSummary = {
    committedDocuments: 0,
    documentsWritten: 0,
    skippedDocuments: 0,
    batches: 0,
    alreadyCommitted: 0,
    reconnects: 0,
    elapsedMs: 0,
  };
  /** Acknowledgements received so far (a measure of progress). */
  acks = 0;
  private readonly window: Sent[] = [];
  private opened = false;
  private sequence = 0n;
  private nextPosition = 0;
  private committed = 0;
  private lastDone: { position: number; id: string } | undefined;
  private toSkip = 0;
  private skipped = 0;
  private skipDigest: Uint8Array = EMPTY_DIGEST;
  private expectedDigest: Uint8Array = new Uint8Array();
  private exhausted = false;
  private failure: UpsertRejectedError | UpsertInputError | undefined;
  private readonly started = performance.now();

  constructor(
    readonly collection: string,
    readonly tenant: string,
    readonly streamId: string,
    private readonly maxInFlight: number,
    private readonly onProgress?: (documents: number) => void,
    /** Whether every stream is opened with `buildIndexAtEnd` (a reopened one too: the stream that ends the upsert builds the index). */
    readonly buildIndexAtEnd = false,
  ) {
    if (!Number.isInteger(maxInFlight) || maxInFlight < 1) {
      throw new RangeError(`maxInFlight must be an integer >= 1, got ${maxInFlight}`);
    }
  }

  /** Whether the stream has a stream id (and can be reopened). */
  get resumable(): boolean {
    return this.streamId !== "";
  }

  /** Batches sent and not yet acknowledged. */
  get inFlightCount(): number {
    return this.window.length;
  }

  /** Input position of the next document to put in a batch. */
  get position(): number {
    return this.nextPosition;
  }

  /** Documents of the input known to be committed (see {@link UpsertSummary.committedDocuments}). */
  get committedDocuments(): number {
    return this.committed;
  }

  /** Whether documents committed by an earlier run remain to be read and handed to {@link skip}. */
  get skipping(): boolean {
    return this.skipped < this.toSkip;
  }

  /** Documents read and skipped so far (while {@link skipping}). */
  get skippedSoFar(): number {
    return this.skipped;
  }

  /** No more batches will be sent (input exhausted or unreadable, or a batch was refused). */
  get sendingDone(): boolean {
    return this.exhausted || this.failure !== undefined;
  }

  /** Whether another batch may be sent now. */
  get windowOpen(): boolean {
    return this.opened && !this.sendingDone && !this.skipping && this.window.length < this.maxInFlight;
  }

  /**
   * Whether to reopen the stream after it failed with `error`: only a
   * resumable stream, only after a failure the retry table retries (a
   * transport failure, a busy server: {@link isRetryable}), and not after a
   * refused batch (nothing after it can be committed any more).
   */
  canReconnect(error: FathomError): boolean {
    return (
      this.resumable && !(this.failure instanceof UpsertRejectedError) && isRetryable(error)
    );
  }

  /** The first message of every stream. */
  openRequest(): UpsertStreamRequest {
    return create(UpsertStreamRequestSchema, {
      request: {
        case: "open",
        value: {
          collection: this.collection,
          tenant: this.tenant,
          streamId: this.streamId,
          buildIndexAtEnd: this.buildIndexAtEnd,
        },
      },
    });
  }

  /**
   * Handles the server's first message of a stream; returns the batches to
   * resend, renumbered from 1.
   *
   * On the first open of a resumable stream, the documents committed earlier
   * (C0) are to be skipped ({@link skipping}). After a reconnect, window
   * batches that end at or before the committed position C' are done (their
   * acks were lost); the rest is resent unchanged.
   *
   * @throws UpsertError DATA_LOSS if C' is below a count acknowledged before.
   * @throws ResumeMismatchError the document before C' is not the one the server committed last.
   */
  onOpened(response: UpsertStreamResponse): UpsertStreamRequest[] {
    if (response.response.case !== "opened") throw protocolError("the first response is not `opened`");
    const opened = response.response.value;
    const committed = Number(opened.committedDocuments);
    this.sequence = 0n;
    if (!this.opened) {
      this.opened = true;
      if (this.resumable) {
        this.toSkip = committed;
        this.committed = committed;
        this.nextPosition = committed;
        this.expectedDigest = opened.idsDigest;
      }
      return [];
    }
    if (committed < this.committed) {
      throw this.filled(
        new UpsertError(
          Code.DataLoss,
          `after reconnecting, the server reports ${committed} documents committed under stream id '${this.streamId}', ` +
            `fewer than the ${this.committed} it acknowledged before: acknowledged data vanished`,
        ),
      );
    }
    this.checkLastId(committed, opened.lastId);
    let known = this.committed;
    while (this.window.length > 0 && endOf(this.window[0]!) <= committed) {
      const sent = this.window.shift()!;
      // Committed before the connection broke; the ack was lost.
      this.summary.documentsWritten += Math.max(0, endOf(sent) - Math.max(sent.firstPosition, known));
      this.summary.batches += 1;
      known = Math.max(known, endOf(sent));
      this.lastDone = { position: endOf(sent) - 1, id: sent.lastId };
      this.report(sent.count);
    }
    this.committed = committed;
    return this.window.map((sent) => {
      sent.batch = create(UpsertBatchSchema, { ...sent.batch, sequence: this.nextSequence() });
      sent.resent = true;
      return create(UpsertStreamRequestSchema, { request: { case: "batch", value: sent.batch } });
    });
  }

  private checkLastId(committed: number, lastId: string): void {
    if (committed === 0) return;
    const wanted = committed - 1;
    let id: string | undefined;
    const holder = this.window.find((sent) => sent.firstPosition <= wanted && wanted < endOf(sent));
    if (holder !== undefined) id = holder.batch.documents[wanted - holder.firstPosition]!.id;
    else if (this.lastDone?.position === wanted) id = this.lastDone.id;
    if (id === undefined || id === lastId) return;
    throw this.filled(
      new ResumeMismatchError(
        `stream id '${this.streamId}' has ${committed} documents committed, the last one '${lastId}', ` +
          `but document ${wanted} of this input is '${id}': another writer committed other data under this ` +
          "stream id; a stream id belongs to one input",
        this.streamId,
      ),
    );
  }

  /**
   * Reads past the next input document, committed by an earlier run, adding
   * its id to the digest. After the last one, checks the digest.
   *
   * @throws ResumeMismatchError the skipped ids differ from those committed.
   */
  skip(document: DocumentMessage): void {
    if (!this.skipping) throw new Error("nothing to skip");
    this.skipDigest = nextIdsDigest(this.skipDigest, document.id);
    this.skipped += 1;
    if (this.skipped === this.toSkip) {
      if (!equalBytes(this.skipDigest, this.expectedDigest)) {
        const n = this.toSkip;
        throw this.filled(
          new ResumeMismatchError(
            `stream id '${this.streamId}' has ${n} documents committed, but the first ${n} documents of this input ` +
              "are not the ones committed under it (their ids differ): a stream id belongs to one input; " +
              "use a new stream id for other data",
            this.streamId,
          ),
        );
      }
      this.summary.skippedDocuments = this.toSkip; // verified: truly skipped
      this.report(this.toSkip);
    }
  }

  /**
   * Records that the input has no more documents.
   *
   * @throws ResumeMismatchError the input ended before the documents an earlier run committed.
   */
  inputExhausted(): void {
    if (this.skipping) {
      throw this.filled(
        new ResumeMismatchError(
          `stream id '${this.streamId}' has ${this.toSkip} documents committed, but this input has only ` +
            `${this.skipped} documents: a stream id belongs to one input; use a new stream id for other data`,
          this.streamId,
        ),
      );
    }
    this.exhausted = true;
  }

  /**
   * Records that reading the document at `position` threw `error`: nothing
   * more is sent; {@link finish} throws it as an `UpsertInputError` once the
   * batches in flight are acknowledged.
   */
  inputFailed(error: unknown, position: number): void {
    if (this.failure !== undefined) return;
    const reason = error instanceof Error ? error.message || error.name : String(error);
    const unsent = this.skipping ? "nothing was sent" : `nothing from document ${this.nextPosition} on was sent`;
    this.failure = new UpsertInputError(
      `reading document ${position} of the input failed (${reason}); ${unsent}`,
      position,
      error,
    );
  }

  /**
   * Places the next batch at the current input position, numbers it and
   * records it in the window (before it is sent, so that a failed send leaves
   * it there to resend). Call only while {@link windowOpen}.
   */
  batchRequest(documents: DocumentMessage[]): UpsertStreamRequest {
    if (!this.windowOpen) throw new Error("the window is closed");
    if (documents.length === 0) throw new Error("an empty batch");
    const batch = create(UpsertBatchSchema, {
      sequence: this.nextSequence(),
      firstPosition: BigInt(this.nextPosition),
      documents,
    });
    this.window.push({ batch, firstPosition: this.nextPosition, count: documents.length, lastId: documents.at(-1)!.id });
    this.nextPosition += documents.length;
    return create(UpsertStreamRequestSchema, { request: { case: "batch", value: batch } });
  }

  private nextSequence(): bigint {
    this.sequence += 1n;
    return this.sequence;
  }

  /** Handles one ack. A refusal is recorded (the first one ends the upsert); {@link finish} throws it. */
  onAck(response: UpsertStreamResponse): void {
    if (response.response.case !== "ack") throw protocolError("expected an `ack`");
    const ack = response.response.value;
    const sent = this.window[0];
    if (sent === undefined) throw protocolError(`ack for batch ${ack.sequence}, but no batch is in flight`);
    if (ack.sequence !== sent.batch.sequence) {
      throw protocolError(`ack for batch ${ack.sequence}, expected ${sent.batch.sequence}`);
    }
    this.window.shift();
    this.acks += 1;
    const committed = Number(ack.committedDocuments);
    if (ack.rejection) {
      this.committed = Math.max(this.committed, committed);
      if (!(this.failure instanceof UpsertRejectedError)) this.failure = rejectionOf(ack, sent);
      return;
    }
    if (committed < this.committed) {
      throw protocolError(
        `the ack of batch ${ack.sequence} says ${committed} documents are committed, fewer than the ${this.committed} acknowledged before`,
      );
    }
    if (ack.alreadyCommitted) {
      this.summary.alreadyCommitted += 1;
      if (sent.resent) {
        // Sent before the reconnect too: the broken connection's write
        // committed after the reopen, its ack lost.
        this.summary.documentsWritten += Math.max(0, endOf(sent) - Math.max(sent.firstPosition, this.committed));
      }
    } else {
      this.summary.batches += 1;
      this.summary.documentsWritten += ack.documentsWritten;
    }
    this.committed = committed;
    this.lastDone = { position: endOf(sent) - 1, id: sent.lastId };
    this.report(sent.count);
  }

  /** The server closed the stream cleanly: check nothing is missing. */
  ended(): void {
    if (this.window.length > 0) {
      throw protocolError(`the stream ended with ${this.window.length} batch(es) unacknowledged`);
    }
  }

  /** Returns the summary, or throws the refusal or input error. */
  finish(): UpsertSummary {
    this.settle();
    if (this.failure !== undefined) throw this.filled(this.failure);
    return this.summary;
  }

  /** The error to throw for a stream that failed with `error`, with this call's figures. After a refused batch, that refusal. */
  failed(error: FathomError): UpsertError {
    if (this.failure instanceof UpsertRejectedError) return this.filled(this.failure);
    const failure =
      error instanceof UpsertError ? error : new UpsertError(error.code, error.rawMessage, error.violations, error.cause ?? error);
    return this.filled(failure);
  }

  private filled<E extends UpsertError>(error: E): E {
    this.settle();
    error.committedDocuments = this.committed;
    error.documentsWritten = this.summary.documentsWritten;
    error.skippedDocuments = this.summary.skippedDocuments;
    error.inFlightDocuments = this.window.reduce((sum, sent) => sum + sent.count, 0);
    return error;
  }

  private settle(): void {
    this.summary.elapsedMs = performance.now() - this.started;
    this.summary.committedDocuments = this.committed;
  }

  private report(documents: number): void {
    if (documents > 0) this.onProgress?.(documents);
  }
}

function rejectionOf(ack: BatchAck, sent: Sent): UpsertRejectedError {
  const rejection = ack.rejection!;
  return new UpsertRejectedError(
    rejection.code as Code,
    `batch ${ack.sequence} (documents ${sent.firstPosition}..${endOf(sent) - 1} of the input) was refused: ${rejection.message}`,
    rejection.violations.map((v) => ({ field: v.field, description: v.description })),
    ack.sequence,
    sent.firstPosition,
    sent.count,
  );
}

/**
 * Cuts documents into batches of at most `batchSize` documents and
 * `batchBytes` bytes (by `sizeOf`; a larger document is a batch of its own),
 * fed one document at a time. The rule of `convert.batched`.
 */
export class BatchCutter<T> {
  private batch: T[] = [];
  private bytes = 0;

  constructor(
    private readonly batchSize: number,
    private readonly batchBytes: number,
    private readonly sizeOf: (item: T) => number,
  ) {}

  /** Documents added and not yet returned in a batch. */
  get pending(): number {
    return this.batch.length;
  }

  /** Adds a document; returns a batch when one is complete. */
  add(item: T): T[] | undefined {
    const size = this.sizeOf(item);
    let full: T[] | undefined;
    if (this.batch.length > 0 && this.bytes + size > this.batchBytes) full = this.take();
    this.batch.push(item);
    this.bytes += size;
    if (this.batch.length >= this.batchSize) full = this.take();
    return full;
  }

  /** The last, partial batch, if any. */
  flush(): T[] | undefined {
    return this.batch.length > 0 ? this.take() : undefined;
  }

  private take(): T[] {
    const batch = this.batch;
    this.batch = [];
    this.bytes = 0;
    return batch;
  }
}

/**
 * Reads past the documents an earlier run committed (see
 * {@link UpsertSession.skip}); a failing read is recorded with
 * {@link UpsertSession.inputFailed}.
 */
export async function skipCommitted(session: UpsertSession, source: AsyncIterator<DocumentMessage>): Promise<void> {
  while (session.skipping) {
    let next: IteratorResult<DocumentMessage>;
    try {
      next = await source.next();
    } catch (error) {
      session.inputFailed(error, session.skippedSoFar);
      return;
    }
    if (next.done) {
      session.inputExhausted(); // throws: too short
      return;
    }
    session.skip(next.value);
  }
}

/**
 * Reads the next batch, or undefined when there is none to send: the input
 * ended ({@link UpsertSession.inputExhausted}) or failed
 * ({@link UpsertSession.inputFailed}; the partial batch is dropped, not sent).
 */
export async function nextBatch(
  session: UpsertSession,
  source: AsyncIterator<DocumentMessage>,
  cutter: BatchCutter<DocumentMessage>,
): Promise<DocumentMessage[] | undefined> {
  for (;;) {
    let next: IteratorResult<DocumentMessage>;
    try {
      next = await source.next();
    } catch (error) {
      session.inputFailed(error, session.position + cutter.pending);
      return undefined;
    }
    if (next.done) {
      const last = cutter.flush();
      if (last === undefined) session.inputExhausted();
      return last;
    }
    const full = cutter.add(next.value);
    if (full !== undefined) return full;
  }
}

/** An async iterable fed by `push`; ends after `close`. Used as a request stream. */
export class AsyncQueue<T> implements AsyncIterable<T> {
  private readonly items: T[] = [];
  private wake: (() => void) | undefined;
  private closed = false;

  /** Adds an item (ignored once closed). */
  push(item: T): void {
    if (this.closed) return;
    this.items.push(item);
    this.notify();
  }

  /** Ends the iteration once the queued items are consumed. */
  close(): void {
    this.closed = true;
    this.notify();
  }

  /** Iterates the items; an async generator, so `return` and `throw` work as Connect expects. */
  async *[Symbol.asyncIterator](): AsyncGenerator<T, void, undefined> {
    try {
      for (;;) {
        const item = this.items.shift();
        if (item !== undefined) {
          yield item;
          continue;
        }
        if (this.closed) return;
        await new Promise<void>((resolve) => {
          this.wake = resolve;
        });
      }
    } finally {
      this.closed = true;
    }
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}
