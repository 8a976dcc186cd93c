/**
 * Bookkeeping of an `UpsertStream` call, independent of I/O: numbering
 * batches, skipping what an earlier run of the same stream id committed,
 * bounding how many batches are in flight, matching acks, and deciding what
 * to resend after a reconnect. The driver lives in `client.ts`.
 *
 * The rules are those of the Rust client (`client/rust/src/upsert_stream.rs`):
 * the input is cut into batches deterministically (`convert.batched`: at most
 * `batchSize` documents and `batchBytes` bytes), and the i-th batch of the
 * input always has sequence number i. So when the first open of a call
 * answers `nextSequence` K > 1, batches 1..K-1 of the input are committed
 * already: they are cut and dropped without being sent.
 *
 * @internal
 * @module
 */

import { create } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import {
  type Document as DocumentMessage,
  type UpsertBatch,
  UpsertBatchSchema,
  type UpsertStreamRequest,
  UpsertStreamRequestSchema,
  type UpsertStreamResponse,
} from "./gen/fathom/v1/documents_pb.js";
import { FathomError, UpsertRejectedError } from "./errors.js";
import type { UpsertSummary } from "./types.js";

/** Pauses (ms) before each reconnect of a resumable stream; its length is the number of attempts without progress. */
export const RECONNECT_DELAYS_MS: readonly number[] = [200, 500, 1000, 2000, 4000];

/** Most documents per batch by default (the server's limit is 1000). */
export const DEFAULT_BATCH_SIZE = 500;

/** Most encoded bytes per batch by default, as the Rust client. */
export const DEFAULT_BATCH_BYTES = 8 * 1024 * 1024;

/** An error for a server that broke the UpsertStream protocol. */
export function protocolError(message: string): FathomError {
  return new FathomError(Code.Internal, `UpsertStream protocol error: ${message}`);
}

interface Sent {
  batch: UpsertBatch;
  /** Position of the batch's first document in the input. */
  offset: number;
}

/**
 * State of one upsert call, possibly spanning several streams.
 *
 * On the first open, `opened.nextSequence` K > 1 means an earlier run with
 * this stream id committed batches 1..K-1: {@link batchesToSkip} says how
 * many input batches the driver must cut and hand to {@link skip} before
 * sending; new batches are numbered from K. After a reconnect, the
 * unacknowledged batches below the new `nextSequence` are known to be
 * committed and count as written; the others are resent with their numbers.
 */
export class UpsertSession {
  readonly summary: UpsertSummary = {
    documentsWritten: 0,
    batches: 0,
    skippedDocuments: 0,
    skippedBatches: 0,
    alreadyCommitted: 0,
    reconnects: 0,
    elapsedMs: 0,
  };
  /** Input batches still to cut and drop (first open of a resumed stream). */
  batchesToSkip = 0;
  private readonly inFlight: Sent[] = [];
  private nextSequence: bigint | undefined;
  private offset = 0;
  private exhausted = false;
  private rejection: UpsertRejectedError | undefined;
  private readonly started = performance.now();

  constructor(
    readonly collection: string,
    readonly tenant: string,
    readonly streamId: string,
    private readonly maxInFlight: number,
    private readonly onProgress?: (documents: number) => void,
  ) {
    if (!Number.isInteger(maxInFlight) || maxInFlight < 1) {
      throw new RangeError(`maxInFlight must be an integer >= 1, got ${maxInFlight}`);
    }
  }

  /** Whether the stream can be reopened after UNAVAILABLE. */
  get resumable(): boolean {
    return this.streamId !== "";
  }

  /** Batches sent and not yet acknowledged. */
  get inFlightCount(): number {
    return this.inFlight.length;
  }

  /** No more batches will be sent (input exhausted, or a batch was rejected). */
  get sendingDone(): boolean {
    return this.exhausted || this.rejection !== undefined;
  }

  /** Whether another batch may be sent now. */
  get windowOpen(): boolean {
    return !this.sendingDone && this.batchesToSkip === 0 && this.inFlight.length < this.maxInFlight;
  }

  /** The first message of every stream. */
  openRequest(): UpsertStreamRequest {
    return create(UpsertStreamRequestSchema, {
      request: { case: "open", value: { collection: this.collection, tenant: this.tenant, streamId: this.streamId } },
    });
  }

  /** Handles the server's first message; returns batches to resend. On the first open, sets {@link batchesToSkip}. */
  onOpened(response: UpsertStreamResponse): UpsertStreamRequest[] {
    if (response.response.case !== "opened") throw protocolError("the first response is not `opened`");
    const serverNext = response.response.value.nextSequence > 0n ? response.response.value.nextSequence : 1n;
    if (this.nextSequence === undefined) {
      // An earlier run with this stream id committed batches 1..serverNext-1
      // of the (same) input: skip them.
      this.batchesToSkip = Number(serverNext - 1n);
      this.nextSequence = serverNext;
      return [];
    }
    // Reconnected: what lies below serverNext was committed before the drop, its acks lost.
    while (this.inFlight.length > 0 && this.inFlight[0]!.batch.sequence < serverNext) {
      const committed = this.inFlight.shift()!;
      this.countWritten(committed.batch.documents.length);
    }
    return this.inFlight.map((sent) =>
      create(UpsertStreamRequestSchema, { request: { case: "batch", value: sent.batch } }),
    );
  }

  /** Drops the next input batch, committed by an earlier run. */
  skip(documents: DocumentMessage[]): void {
    if (this.batchesToSkip <= 0) throw new Error("nothing to skip");
    this.batchesToSkip -= 1;
    this.offset += documents.length;
    this.summary.skippedBatches += 1;
    this.summary.skippedDocuments += documents.length;
    this.onProgress?.(documents.length);
  }

  /** Records that the input has no more batches. */
  inputExhausted(): void {
    this.exhausted = true;
    this.batchesToSkip = 0;
  }

  /** Numbers the next batch of the input and records it as in flight. Call only while {@link windowOpen}. */
  batchRequest(documents: DocumentMessage[]): UpsertStreamRequest {
    if (this.nextSequence === undefined) throw new Error("onOpened() first");
    if (!this.windowOpen) throw new Error("the window is closed");
    const batch = create(UpsertBatchSchema, { sequence: this.nextSequence, documents });
    this.inFlight.push({ batch, offset: this.offset });
    this.nextSequence += 1n;
    this.offset += documents.length;
    return create(UpsertStreamRequestSchema, { request: { case: "batch", value: batch } });
  }

  /** Handles one ack. A rejection is recorded; {@link finish} throws it. */
  onAck(response: UpsertStreamResponse): void {
    if (response.response.case !== "ack") throw protocolError("expected an `ack`");
    const ack = response.response.value;
    const expected = this.inFlight[0];
    if (expected === undefined) throw protocolError(`ack for batch ${ack.sequence}, but no batch is in flight`);
    if (ack.sequence !== expected.batch.sequence) {
      throw protocolError(`ack for batch ${ack.sequence}, expected ${expected.batch.sequence}`);
    }
    this.inFlight.shift();
    if (ack.rejection) {
      if (this.rejection === undefined) {
        const last = expected.offset + expected.batch.documents.length - 1;
        this.rejection = new UpsertRejectedError(
          ack.rejection.code as Code,
          `batch ${ack.sequence} (documents ${expected.offset}..${last} of the input) was rejected: ${ack.rejection.message}`,
          ack.rejection.violations.map((v) => ({ field: v.field, description: v.description })),
          ack.sequence,
          expected.offset,
          0,
        );
      }
      return;
    }
    const documents = expected.batch.documents.length;
    if (ack.alreadyCommitted) {
      this.summary.alreadyCommitted += 1;
      this.countWritten(documents);
    } else {
      this.countWritten(documents, ack.documentsWritten);
    }
  }

  /** The server closed the stream cleanly: check nothing is missing. */
  ended(): void {
    if (this.inFlight.length > 0) {
      throw protocolError(`the stream ended with ${this.inFlight.length} batch(es) unacknowledged`);
    }
  }

  /** Returns the summary, or throws the first rejection. */
  finish(): UpsertSummary {
    this.summary.elapsedMs = performance.now() - this.started;
    if (this.rejection !== undefined) {
      this.rejection.documentsWritten = this.summary.documentsWritten;
      throw this.rejection;
    }
    return this.summary;
  }

  private countWritten(documents: number, written = documents): void {
    this.summary.batches += 1;
    this.summary.documentsWritten += written;
    this.onProgress?.(documents);
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
