// Unit tests of the UpsertStream bookkeeping (src/upsert.ts), which is pure:
// the server's messages are built here as the protocol defines them, and the
// requests the session asks to send are checked. The protocol against the
// real server is tested in test/live/stream.test.ts.
import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import {
  type Document as DocumentMessage,
  DocumentSchema,
  type UpsertStreamRequest,
  type UpsertStreamResponse,
  UpsertStreamResponseSchema,
} from "../../src/gen/fathom/v1/documents_pb.js";
import {
  Code,
  FathomError,
  ResumeMismatchError,
  UpsertError,
  UpsertInputError,
  UpsertRejectedError,
} from "../../src/errors.js";
import {
  BatchCutter,
  EMPTY_DIGEST,
  idsDigest,
  isTransportFailure,
  nextBatch,
  skipCommitted,
  UpsertSession,
} from "../../src/upsert.js";

const docs = (...ids: string[]): DocumentMessage[] => ids.map((id) => create(DocumentSchema, { id, vector: [1] }));

function opened(committed = 0, ids?: string[], lastId = ""): UpsertStreamResponse {
  return create(UpsertStreamResponseSchema, {
    response: {
      case: "opened",
      value: {
        streamId: "s",
        nextSequence: 1n,
        committedDocuments: BigInt(committed),
        lastId,
        idsDigest: ids === undefined ? EMPTY_DIGEST : idsDigest(ids),
      },
    },
  });
}

function ack(sequence: number, written: number, committed: number, alreadyCommitted = false): UpsertStreamResponse {
  return create(UpsertStreamResponseSchema, {
    response: {
      case: "ack",
      value: {
        sequence: BigInt(sequence),
        documentsWritten: written,
        alreadyCommitted,
        committedDocuments: BigInt(committed),
      },
    },
  });
}

function refusal(sequence: number, committed: number): UpsertStreamResponse {
  return create(UpsertStreamResponseSchema, {
    response: {
      case: "ack",
      value: {
        sequence: BigInt(sequence),
        committedDocuments: BigInt(committed),
        rejection: {
          code: Code.InvalidArgument,
          message: "bad vector",
          violations: [{ field: "documents[1].vector", description: "NaN" }],
        },
      },
    },
  });
}

function batchOf(request: UpsertStreamRequest): [number, number, string[]] {
  assert.equal(request.request.case, "batch");
  const batch = request.request.value!;
  return [Number(batch.sequence), Number(batch.firstPosition), batch.documents.map((d) => d.id)];
}

function session(streamId = "s", window = 8, progress?: number[]): UpsertSession {
  return new UpsertSession("docs", "", streamId, window, progress ? (n) => progress.push(n) : undefined);
}

async function* from(documents: DocumentMessage[], failure?: Error): AsyncGenerator<DocumentMessage> {
  yield* documents;
  if (failure) throw failure;
}

const unavailable = new FathomError(Code.Unavailable, "gone");

describe("ids digest", () => {
  it("matches the protocol's test vector", () => {
    assert.deepEqual(idsDigest([]), new Uint8Array(32));
    assert.equal(
      Buffer.from(idsDigest(["a", "b"])).toString("hex"),
      "abccbe9b24d2bbd3aa1360d605147a841dd051130131c6929d6004e1ae4796e8",
    );
  });
});

describe("UpsertSession", () => {
  it("opens every stream with buildIndexAtEnd when asked", () => {
    const plain = session().openRequest().request;
    assert.equal(plain.case === "open" && plain.value.buildIndexAtEnd, false);
    const s = new UpsertSession("docs", "t1", "s", 8, undefined, true);
    const first = s.openRequest().request;
    assert.equal(first.case, "open");
    assert.deepEqual(
      first.case === "open" ? [first.value.collection, first.value.tenant, first.value.streamId, first.value.buildIndexAtEnd] : [],
      ["docs", "t1", "s", true],
    );
    s.onOpened(opened());
    s.batchRequest(docs("a"));
    // A stream reopened after a broken connection asks for the build too: the
    // stream that ends the upsert is the one that builds the index.
    const reopened = s.openRequest().request;
    assert.equal(reopened.case === "open" && reopened.value.buildIndexAtEnd, true);
  });

  it("places batches in the input and numbers them per call", () => {
    const s = session("s", 2);
    assert.equal(s.windowOpen, false); // not opened yet
    assert.deepEqual(s.onOpened(opened()), []);
    assert.equal(s.windowOpen, true);
    const first = s.batchRequest(docs("a", "b", "c"));
    const second = s.batchRequest(docs("d"));
    assert.deepEqual([batchOf(first), batchOf(second)], [[1, 0, ["a", "b", "c"]], [2, 3, ["d"]]]);
    assert.equal(s.windowOpen, false); // the window is full
    s.onAck(ack(1, 3, 3));
    s.onAck(ack(2, 1, 4));
    s.inputExhausted();
    const summary = s.finish();
    assert.deepEqual({ ...summary, elapsedMs: 0 }, {
      committedDocuments: 4,
      documentsWritten: 4,
      skippedDocuments: 0,
      batches: 2,
      alreadyCommitted: 0,
      reconnects: 0,
      elapsedMs: 0,
    });
  });

  it("refuses acks out of order and committed counts going back", () => {
    const s = session();
    s.onOpened(opened());
    s.batchRequest(docs("a", "b"));
    s.batchRequest(docs("c"));
    assert.throws(() => s.onAck(ack(2, 1, 1)), /ack for batch 2, expected 1/);
    s.onAck(ack(1, 2, 2));
    assert.throws(() => s.onAck(ack(2, 1, 1)), /fewer than the 2 acknowledged before/);
  });

  it("skips the committed documents after checking their ids, then sends from there with any batch size", async () => {
    const progress: number[] = [];
    const s = session("s", 8, progress);
    s.onOpened(opened(3, ["a", "b", "c"], "c"));
    assert.equal(s.skipping, true);
    assert.equal(s.windowOpen, false);
    const source = from(docs("a", "b", "c", "d", "e"));
    await skipCommitted(s, source);
    assert.equal(s.skipping, false);
    assert.deepEqual(progress, [3]);
    const cutter = new BatchCutter<DocumentMessage>(10, 1 << 20, () => 1);
    const batch = await nextBatch(s, source, cutter);
    assert.deepEqual(batchOf(s.batchRequest(batch!)), [1, 3, ["d", "e"]]);
    s.onAck(ack(1, 2, 5));
    assert.equal(await nextBatch(s, source, cutter), undefined);
    const summary = s.finish();
    assert.deepEqual(
      [summary.committedDocuments, summary.documentsWritten, summary.skippedDocuments],
      [5, 2, 3],
    );
    assert.deepEqual(progress, [3, 2]);
  });

  it("refuses to resume on other data before sending anything", async () => {
    const s = session();
    s.onOpened(opened(2, ["a", "b"], "b"));
    const error = await skipCommitted(s, from(docs("a", "x", "c"))).then(
      () => assert.fail("expected a mismatch"),
      (e: unknown) => e,
    );
    assert.ok(error instanceof ResumeMismatchError, String(error));
    assert.equal(error.code, Code.FailedPrecondition);
    assert.equal(
      error.rawMessage,
      "stream id 's' has 2 documents committed, but the first 2 documents of this input are not the ones committed " +
        "under it (their ids differ): a stream id belongs to one input; use a new stream id for other data",
    );
    assert.deepEqual([error.committedDocuments, error.documentsWritten, error.skippedDocuments], [2, 0, 0]);
    assert.equal(s.inFlightCount, 0);
  });

  it("refuses to resume on a shorter input", async () => {
    const s = session();
    s.onOpened(opened(3, ["a", "b", "c"]));
    await assert.rejects(skipCommitted(s, from(docs("a", "b"))), /this input has only 2 documents/);
  });

  it("never skips or reconnects without a stream id", () => {
    const s = session("");
    s.onOpened(opened(5, ["a", "b", "c", "d", "e"]));
    assert.equal(s.skipping, false);
    assert.deepEqual(batchOf(s.batchRequest(docs("a"))), [1, 0, ["a"]]);
    assert.equal(s.canReconnect(unavailable), false);
  });

  it("after a reconnect, treats batches up to the committed position as done and resends the rest renumbered", () => {
    const progress: number[] = [];
    const s = session("s", 8, progress);
    s.onOpened(opened());
    for (const ids of [["a", "b"], ["c", "d"], ["e", "f"]]) s.batchRequest(docs(...ids));
    s.onAck(ack(1, 2, 2));
    assert.equal(s.canReconnect(unavailable), true);
    // The batch of c, d was committed but its ack lost; e, f was not.
    const resend = s.onOpened(opened(4, undefined, "d"));
    assert.deepEqual(resend.map(batchOf), [[1, 4, ["e", "f"]]]);
    assert.deepEqual(batchOf(s.batchRequest(docs("g"))), [2, 6, ["g"]]);
    s.onAck(ack(1, 2, 6));
    s.onAck(ack(2, 1, 7));
    s.inputExhausted();
    const summary = s.finish();
    assert.deepEqual(
      [summary.committedDocuments, summary.documentsWritten, summary.batches, summary.alreadyCommitted],
      [7, 7, 4, 0],
    );
    assert.deepEqual(progress, [2, 2, 2, 1]);
  });

  it("counts once a batch the broken connection committed late, re-acknowledged as committed", () => {
    const s = session();
    s.onOpened(opened());
    s.batchRequest(docs("a", "b"));
    s.batchRequest(docs("c", "d"));
    assert.deepEqual(s.onOpened(opened(0)).map(batchOf), [[1, 0, ["a", "b"]], [2, 2, ["c", "d"]]]);
    s.onAck(ack(1, 0, 2, true));
    s.onAck(ack(2, 2, 4));
    s.inputExhausted();
    const summary = s.finish();
    assert.deepEqual(
      [summary.committedDocuments, summary.documentsWritten, summary.batches, summary.alreadyCommitted],
      [4, 4, 1, 1],
    );
  });

  it("fails loudly when a reconnect finds fewer documents than were acknowledged", () => {
    const s = session();
    s.onOpened(opened());
    s.batchRequest(docs("a", "b"));
    s.onAck(ack(1, 2, 2));
    assert.throws(
      () => s.onOpened(opened(1, undefined, "a")),
      (error: unknown) => error instanceof UpsertError && error.code === Code.DataLoss && /vanished/.test(error.message),
    );
  });

  it("refuses a reconnect whose last committed id is not this input's", () => {
    const s = session();
    s.onOpened(opened());
    s.batchRequest(docs("a", "b"));
    s.batchRequest(docs("c", "d"));
    assert.throws(
      () => s.onOpened(opened(4, undefined, "zzz")),
      (error: unknown) => error instanceof ResumeMismatchError && /document 3 of this input is 'd'/.test(error.message),
    );
  });

  it("ends with a refused batch with exact figures, and does not reconnect after it", () => {
    const s = session();
    s.onOpened(opened());
    s.batchRequest(docs("a", "b"));
    s.batchRequest(docs("c", "d"));
    s.batchRequest(docs("e", "f"));
    s.onAck(ack(1, 2, 2));
    s.onAck(refusal(2, 2));
    assert.equal(s.sendingDone, true);
    s.onAck(refusal(3, 2)); // refused too: it would leave a gap
    assert.equal(s.canReconnect(unavailable), false);
    let error: unknown;
    try {
      s.finish();
    } catch (e) {
      error = e;
    }
    assert.ok(error instanceof UpsertRejectedError, String(error));
    assert.deepEqual([error.sequence, error.batchOffset, error.batchDocuments], [2n, 2, 2]);
    assert.deepEqual([error.committedDocuments, error.documentsWritten], [2, 2]);
    assert.equal(error.rawMessage, "batch 2 (documents 2..3 of the input) was refused: bad vector");
    assert.deepEqual(error.violations.map((v) => v.field), ["documents[1].vector"]);
    assert.match(String(error), /\(2 documents of the input committed, 2 written by this call\)/);
  });

  it("drops the partial batch on an input error and waits for the batches in flight", async () => {
    const broken = new Error("line 4 is not JSON");
    const s = session();
    s.onOpened(opened());
    const source = from(docs("a", "b", "c"), broken);
    const cutter = new BatchCutter<DocumentMessage>(2, 1 << 20, () => 1);
    s.batchRequest((await nextBatch(s, source, cutter))!);
    assert.equal(await nextBatch(s, source, cutter), undefined); // "c" is read, then the source throws
    assert.equal(s.sendingDone, true);
    assert.equal(s.inFlightCount, 1);
    s.onAck(ack(1, 2, 2));
    let error: unknown;
    try {
      s.finish();
    } catch (e) {
      error = e;
    }
    assert.ok(error instanceof UpsertInputError, String(error));
    assert.equal(error.cause, broken);
    assert.equal(error.position, 3);
    assert.equal(
      error.rawMessage,
      "reading document 3 of the input failed (line 4 is not JSON); nothing from document 2 on was sent",
    );
    assert.deepEqual([error.committedDocuments, error.documentsWritten], [2, 2]);
  });

  it("sends nothing when the input fails while skipping", async () => {
    const s = session();
    s.onOpened(opened(2, ["a", "b"]));
    await skipCommitted(s, from(docs("a"), new Error("unreadable")));
    assert.equal(s.sendingDone, true);
    assert.throws(() => s.finish(), /reading document 1 of the input failed \(unreadable\); nothing was sent/);
  });

  it("turns stream failures into upsert errors with figures", () => {
    const s = session();
    s.onOpened(opened());
    s.batchRequest(docs("a"));
    s.onAck(ack(1, 1, 1));
    s.batchRequest(docs("b", "c"));
    const error = s.failed(new FathomError(Code.NotFound, "collection docs was dropped"));
    assert.ok(error instanceof UpsertError);
    assert.deepEqual([error.code, error.committedDocuments, error.documentsWritten], [Code.NotFound, 1, 1]);
    // The batch in flight may or may not have been committed: the figure is a lower bound.
    assert.equal(error.inFlightDocuments, 2);
    assert.match(String(error), /\(1 document of the input committed, 2 more in flight may be, 1 written by this call\)/);
  });
});

describe("isTransportFailure", () => {
  const cases: [Code, string, boolean][] = [
    [Code.Unavailable, "the connection was lost", true],
    [Code.Aborted, "read ECONNRESET", true],
    [Code.Unknown, "h2 protocol error: error reading a body from connection", true],
    [Code.Internal, "stream closed with error code NGHTTP2_PROTOCOL_ERROR", true],
    [Code.Internal, "Received RST_STREAM with error code 2", true],
    [Code.Internal, "ids digest mismatch in the store", false],
    [Code.FailedPrecondition, "the collection was re-created", false],
    [Code.NotFound, "connection reset", false],
    [Code.InvalidArgument, "batch.sequence", false],
  ];
  for (const [code, message, retry] of cases) {
    it(`${retry ? "retries" : "does not retry"} ${Code[code]}: ${message}`, () => {
      assert.equal(isTransportFailure(code, message), retry);
    });
  }
});
