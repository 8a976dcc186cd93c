// The UpsertStream protocol against the live server at $FATHOM_SERVER:
// batches placed by input position and acknowledged, the in-flight window,
// refused batches, exact resume across calls (an upsert that failed, run
// again with the same stream id and another batch size; on other data it is
// refused), input errors, resume inside a call (the connection cut for real
// by a TCP link in between), and the unary Upsert. Every figure an upsert
// reports is checked against what the database holds. Every test uses its own
// collection and drops it.
import { strict as assert } from "node:assert";
import { randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import {
  Code,
  type Collection,
  type DocumentInput,
  FathomClient,
  FathomError,
  ResumeMismatchError,
  UpsertError,
  UpsertInputError,
  UpsertRejectedError,
  type UpsertSummary,
} from "../../src/index.js";
import { type StreamOpened, UpsertStreamRequestSchema } from "../../src/gen/fathom/v1/documents_pb.js";
import { idsDigest } from "../../src/upsert.js";
import { CuttableLink } from "../support/netcut.js";
import { rng } from "../support/random.js";

const server = process.env.FATHOM_SERVER;
const DIM = 8;

type Doc = DocumentInput & { vector: number[]; text: string };

/** Documents with unique ids and texts of random length (so a byte limit cuts batches of varying sizes). */
function makeDocs(n: number, seed = 1, prefix = "s"): Doc[] {
  const random = rng(seed);
  return Array.from({ length: n }, (_, i) => ({
    id: `${prefix}${String(i).padStart(5, "0")}`,
    vector: Array.from({ length: DIM }, () => random() * 2 - 1),
    text: "word ".repeat(Math.floor(random() * 200)),
    metadata: { i },
  }));
}

function uniqueName(prefix: string): string {
  return `${prefix}_${randomBytes(6).toString("hex")}`;
}

class Interrupted extends Error {}

/** Yields docs[0..position), then throws (like a malformed line). */
function* failingAt(docs: Doc[], position: number): Generator<Doc> {
  yield* docs.slice(0, position);
  throw new Interrupted(`line ${position + 1} is malformed`);
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  assert.fail("expected the promise to reject");
}

describe("live upsert stream", { skip: server ? false : "FATHOM_SERVER is not set (live tests need a running server)" }, () => {
  let client: FathomClient;
  const created: string[] = [];

  async function newCollection(options = {}): Promise<Collection> {
    const collection = await client.createCollection(uniqueName("tsstream"), DIM, options);
    created.push(collection.name);
    return collection;
  }

  /** Where the server says a stream id stands, read by opening it on the raw Connect client. */
  async function streamState(collection: string, streamId: string, tenant = ""): Promise<StreamOpened> {
    const open = create(UpsertStreamRequestSchema, { request: { case: "open", value: { collection, tenant, streamId } } });
    const responses = [];
    async function* requests() {
      yield open;
    }
    for await (const response of client.documentsRpc.upsertStream(requests(), { timeoutMs: 30_000 })) responses.push(response);
    assert.equal(responses.length, 1);
    const opened = responses[0]!.response;
    assert.equal(opened.case, "opened");
    return opened.value as StreamOpened;
  }

  /** The server holds exactly the first n documents of `docs` under the stream id. */
  async function assertCommittedPrefix(collection: Collection, streamId: string, docs: Doc[], n: number): Promise<void> {
    const state = await streamState(collection.name, streamId);
    assert.equal(state.committedDocuments, BigInt(n));
    assert.equal(state.lastId, n > 0 ? docs[n - 1]!.id : "");
    const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");
    assert.equal(hex(state.idsDigest), hex(idsDigest(docs.slice(0, n).map((d) => d.id))));
  }

  before(() => {
    client = new FathomClient(server!, { timeoutMs: 60_000 });
  });

  after(async () => {
    for (const name of created) await client.deleteCollection(name).catch(() => undefined);
    client.close();
  });

  for (const window of [1, 4]) {
    it(`acknowledges many batches, and the summary equals the database (window ${window})`, async () => {
      const docs = await newCollection();
      const n = 3000;
      const size = 50;
      const source = makeDocs(n);
      const streamId = `seq-${docs.name}`;
      let pulled = 0;
      let ackedDocs = 0;
      let mostAhead = 0;
      const acks: number[] = [];
      function* reading() {
        for (const doc of source) {
          pulled += 1;
          mostAhead = Math.max(mostAhead, pulled - ackedDocs);
          yield doc;
        }
      }
      const summary = await docs.upsert(reading(), {
        batchSize: size,
        streamId,
        maxInFlight: window,
        onProgress: (documents) => {
          ackedDocs += documents;
          acks.push(documents);
        },
      });
      assert.deepEqual({ ...summary, elapsedMs: 0 }, {
        committedDocuments: n,
        documentsWritten: n,
        skippedDocuments: 0,
        batches: n / size,
        alreadyCommitted: 0,
        reconnects: 0,
        elapsedMs: 0,
      } satisfies UpsertSummary);
      assert.ok(summary.elapsedMs > 0);
      assert.deepEqual(acks, new Array(n / size).fill(size));
      assert.equal(await docs.count(), summary.committedDocuments);
      await assertCommittedPrefix(docs, streamId, source, n);
      // Never more unacknowledged documents than the window plus the batch being cut.
      assert.ok(mostAhead <= size * (window + 1), `${mostAhead} documents ahead`);
    });
  }

  it("handles an empty input and refuses bad limits before sending", async () => {
    const docs = await newCollection();
    const summary = await docs.upsert([], { streamId: `empty-${docs.name}` });
    assert.deepEqual([summary.committedDocuments, summary.documentsWritten, summary.batches], [0, 0, 0]);
    await assertCommittedPrefix(docs, `empty-${docs.name}`, [], 0);
    const one = makeDocs(1);
    await assert.rejects(docs.upsert(one, { batchSize: 0 }), /batchSize must be an integer >= 1/);
    await assert.rejects(docs.upsert(one, { batchBytes: 0 }), /batchBytes must be an integer >= 1/);
    await assert.rejects(docs.upsert(one, { maxInFlight: 0 }), /maxInFlight/);
    const unconvertible = await rejection(docs.upsert([{ id: "a" } as DocumentInput]));
    assert.ok(unconvertible instanceof UpsertInputError, String(unconvertible));
    assert.match(unconvertible.message, /#0 has no vector/);
    assert.equal(await docs.count(), 0);
  });

  it("stops at a refused batch in the middle of a stream without stream id; the batches before it are stored", async () => {
    const docs = await newCollection();
    const n = 2000;
    const size = 100;
    const bad = 1234;
    const source = makeDocs(n);
    source[bad]!.vector[3] = Number.NaN;
    const ids = source.map((d) => d.id);
    const error = await rejection(docs.upsert(source, { batchSize: size, maxInFlight: 4 }));
    assert.ok(error instanceof UpsertRejectedError, String(error));
    assert.equal(error.code, Code.InvalidArgument);
    assert.deepEqual(error.violations.map((v) => v.field), [`documents[${bad % size}].vector`]);
    assert.match(error.message, /documents\[34\]\.vector/);
    assert.deepEqual([error.sequence, error.batchOffset, error.batchDocuments], [13n, 1200, size]);
    assert.equal(await docs.count({ $id: { $in: ids.slice(0, 1200) } }), 1200);
    assert.equal(await docs.count({ $id: { $in: ids.slice(1200, 1300) } }), 0);
    // Without a stream id, batches already in flight behind the refused one are written too.
    const stored = await docs.count();
    assert.equal(error.documentsWritten, stored);
    assert.equal(error.committedDocuments, stored);
    assert.ok(stored >= 1200 && stored <= 1200 + 3 * size && stored % size === 0, `${stored} stored`);
  });

  it("leaves a prefix at a refused batch on a resumable stream, and resumes after the fix", async () => {
    const docs = await newCollection();
    const n = 2000;
    const bad = 1234;
    const source = makeDocs(n, 3);
    const streamId = `refused-${docs.name}`;
    const broken = source.map((d, i) => (i === bad ? { ...d, vector: new Array(DIM).fill(Number.NaN) } : d));
    const error = await rejection(docs.upsert(broken, { batchSize: 100, streamId, maxInFlight: 4 }));
    assert.ok(error instanceof UpsertRejectedError, String(error));
    // The batches behind the refused one were refused too: what is committed is exactly the prefix before it.
    assert.deepEqual([error.batchOffset, error.committedDocuments, error.documentsWritten], [1200, 1200, 1200]);
    assert.equal(await docs.count(), 1200);
    await assertCommittedPrefix(docs, streamId, source, 1200);

    // Fixed, and run again with another batch size: it continues exactly.
    const summary = await docs.upsert(source, { batchSize: 70, streamId });
    assert.deepEqual([summary.skippedDocuments, summary.documentsWritten, summary.committedDocuments], [1200, 800, n]);
    assert.equal(await docs.count(), n);
    await assertCommittedPrefix(docs, streamId, source, n);
  });

  it("resumes exactly after an input error, with another batch size", async () => {
    const docs = await newCollection();
    const n = 3000;
    const bad = 1234;
    const source = makeDocs(n, 2);
    const ids = source.map((d) => d.id);
    const streamId = `resume-${docs.name}`;
    const error = await rejection(docs.upsert(failingAt(source, bad), { batchSize: 100, streamId, maxInFlight: 4 }));
    assert.ok(error instanceof UpsertInputError, String(error));
    assert.ok(error.cause instanceof Interrupted);
    assert.equal(error.position, bad);
    assert.match(error.message, /line 1235 is malformed/);
    // The partial batch (documents 1200..1233) was not sent; the batches
    // before it were acknowledged before the error was thrown.
    assert.deepEqual([error.committedDocuments, error.documentsWritten], [1200, 1200]);
    assert.equal(await docs.count(), error.committedDocuments);
    assert.equal(await docs.count({ $id: { $in: ids.slice(1200, bad) } }), 0);
    await assertCommittedPrefix(docs, streamId, source, 1200);

    // The fixed input, run again with another batch size (and a byte limit).
    const progress: number[] = [];
    const second = await docs.upsert(source, {
      batchSize: 300,
      batchBytes: 40_000,
      streamId,
      onProgress: (documents) => progress.push(documents),
    });
    assert.deepEqual([second.skippedDocuments, second.documentsWritten, second.committedDocuments], [1200, n - 1200, n]);
    assert.deepEqual([second.alreadyCommitted, second.reconnects], [0, 0]);
    assert.equal(await docs.count(), n);
    assert.equal(progress[0], 1200);
    assert.equal(progress.reduce((a, b) => a + b, 0), n);
    const got = await docs.get([ids[0]!, ids[bad]!, ids[n - 1]!], { include: ["text"] });
    assert.deepEqual(got.map((d) => d.text), [source[0]!.text, source[bad]!.text, source[n - 1]!.text]);
    await assertCommittedPrefix(docs, streamId, source, n);

    // Run again with yet another batch size: everything is skipped, nothing sent.
    const third = await docs.upsert(source, { batchSize: 7, streamId });
    assert.deepEqual([third.skippedDocuments, third.documentsWritten, third.batches, third.committedDocuments], [n, 0, 0, n]);
    assert.equal(await docs.count(), n);
  });

  it("refuses to resume on different data, and writes nothing", async () => {
    const docs = await newCollection();
    const source = makeDocs(700, 5);
    const streamId = `mismatch-${docs.name}`;
    const first = await docs.upsert(source.slice(0, 500), { batchSize: 64, streamId });
    assert.equal(first.committedDocuments, 500);
    assert.equal(await docs.count(), 500);

    const other = makeDocs(700, 5, "t"); // same vectors, other ids
    const error = await rejection(docs.upsert(other, { batchSize: 64, streamId }));
    assert.ok(error instanceof ResumeMismatchError, String(error));
    assert.equal(error.code, Code.FailedPrecondition);
    assert.equal(
      error.rawMessage,
      `stream id '${streamId}' has 500 documents committed, but the first 500 documents of this input are not the ` +
        "ones committed under it (their ids differ): a stream id belongs to one input; use a new stream id for other data",
    );
    assert.deepEqual([error.committedDocuments, error.documentsWritten], [500, 0]);

    const short = await rejection(docs.upsert(source.slice(0, 300), { streamId }));
    assert.ok(short instanceof ResumeMismatchError, String(short));
    assert.match(short.message, /this input has only 300 documents/);
    // Nothing was written by either.
    assert.equal(await docs.count(), 500);
    assert.equal(await docs.count({ $id: { $in: other.map((d) => d.id) } }), 0);
    await assertCommittedPrefix(docs, streamId, source, 500);

    // The same input with more appended resumes: only the new documents are sent.
    const appended = await docs.upsert(source, { batchSize: 33, streamId });
    assert.deepEqual([appended.skippedDocuments, appended.documentsWritten, appended.committedDocuments], [500, 200, 700]);
    assert.equal(await docs.count(), 700);
  });

  it("resumes an upsert cancelled with an AbortSignal", async () => {
    const docs = await newCollection();
    const n = 2000;
    const source = makeDocs(n, 4);
    const streamId = `abort-${docs.name}`;
    const controller = new AbortController();
    let acked = 0;
    const error = await rejection(
      docs.upsert(source, {
        batchSize: 50,
        streamId,
        signal: controller.signal,
        onProgress: () => {
          acked += 1;
          if (acked === 5) controller.abort();
        },
      }),
    );
    assert.ok(error instanceof UpsertError, String(error));
    assert.equal(error.code, Code.Canceled);
    assert.ok(error.committedDocuments >= 5 * 50);

    // Resumed with another batch size. A batch the cancelled call had in
    // flight may still commit meanwhile: then the server skips it.
    const summary = await docs.upsert(source, { batchSize: 70, streamId });
    assert.ok(summary.skippedDocuments >= 5 * 50, JSON.stringify(summary));
    assert.ok(summary.skippedDocuments + summary.documentsWritten <= n, JSON.stringify(summary));
    assert.equal(summary.committedDocuments, n);
    assert.equal(await docs.count(), n);
  });

  it("stops with NOT_FOUND when the collection is dropped under the stream", async () => {
    const docs = await newCollection();
    const source = makeDocs(1000, 11);
    async function* dropping() {
      for (const [position, doc] of source.entries()) {
        if (position === 500) await client.deleteCollection(docs.name);
        yield doc;
      }
    }
    const error = await rejection(docs.upsert(dropping(), { batchSize: 50, streamId: `drop-${docs.name}` }));
    assert.ok(error instanceof UpsertError, String(error));
    assert.equal(error.code, Code.NotFound, error.message);
    assert.ok(error.committedDocuments <= 500);
    assert.equal(error.documentsWritten, error.committedDocuments);
  });

  it("reconnects inside the call when the connection is cut, resending only what was not committed", async () => {
    const docs = await newCollection();
    const n = 3000;
    const size = 50;
    const source = makeDocs(n, 6);
    const streamId = `cut-${docs.name}`;
    const link = await CuttableLink.start(server!);
    const linked = new FathomClient(link.target, { retry: { maxStreamAttempts: 11, initialBackoffMs: 200, maxBackoffMs: 200 } });
    let summary: UpsertSummary;
    try {
      let acked = 0;
      summary = await linked.collection(docs.name).upsert(source, {
        batchSize: size,
        streamId,
        onProgress: () => {
          acked += 1;
          if (acked === 5 || acked === 30) link.cut();
        },
      });
    } finally {
      linked.close();
      await link.close();
    }
    assert.equal(link.cuts, 2);
    assert.ok(summary.reconnects >= 2, JSON.stringify(summary));
    // Every batch is counted once: written (acknowledged, or found committed
    // after a reconnect), or re-acknowledged as committed when the cut
    // connection's write committed after the reopen. Which, depends on timing.
    assert.equal(summary.batches + summary.alreadyCommitted, n / size);
    assert.deepEqual([summary.documentsWritten, summary.committedDocuments, summary.skippedDocuments], [n, n, 0]);
    assert.equal(await docs.count(), n);
    await assertCommittedPrefix(docs, streamId, source, n);
  });

  it("fails with UNAVAILABLE when the connection is cut without a stream id", async () => {
    const docs = await newCollection();
    const link = await CuttableLink.start(server!);
    const linked = new FathomClient(link.target, { retry: { maxStreamAttempts: 4, initialBackoffMs: 0 } });
    let error: unknown;
    try {
      let acked = 0;
      error = await rejection(
        linked.collection(docs.name).upsert(makeDocs(2000), {
          batchSize: 50,
          onProgress: () => {
            acked += 1;
            if (acked === 3) link.cut();
          },
        }),
      );
    } finally {
      linked.close();
      await link.close();
    }
    assert.ok(error instanceof UpsertError, String(error));
    assert.equal(error.code, Code.Unavailable, error.message);
    assert.equal(error.committedDocuments, error.documentsWritten);
    assert.ok(error.committedDocuments >= 150);
    // Batches in flight at the cut may have been written too.
    const stored = await docs.count();
    assert.ok(error.committedDocuments <= stored && stored < 2000, `${stored} stored`);
  });

  it("writes one batch with the unary Upsert, all or nothing", async () => {
    const docs = await newCollection();
    const vector = (x: number) => new Array(DIM).fill(x);
    const written = await docs.upsertBatch([
      { id: "a", vector: vector(0.1), text: "x", metadata: { k: 1 } },
      { id: "b", vector: vector(0.2) },
      { id: "c", vector: new Float32Array(vector(0.3)), text: "z" },
    ]);
    assert.equal(written, 3);
    assert.equal(await docs.count(), 3);
    assert.equal(await docs.upsertBatch([{ id: "a", vector: vector(0.1), text: "replaced" }]), 1);
    const [a] = await docs.get(["a"]);
    assert.deepEqual([a?.text, a?.metadata], ["replaced", {}]);

    const invalid = await rejection(docs.upsertBatch([{ id: "d", vector: vector(0.5) }, { id: "e", vector: vector(Number.NaN) }]));
    assert.ok(invalid instanceof FathomError && !(invalid instanceof UpsertRejectedError), String(invalid));
    assert.equal(invalid.code, Code.InvalidArgument);
    assert.deepEqual(invalid.violations.map((v) => v.field), ["documents[1].vector"]);
    const duplicate = await rejection(docs.upsertBatch([{ id: "f", vector: vector(1) }, { id: "f", vector: vector(1) }]));
    assert.ok(duplicate instanceof FathomError);
    assert.equal(duplicate.code, Code.InvalidArgument);
    assert.equal(await docs.count(), 3);

    const tenants = await newCollection({ multiTenant: true });
    assert.equal(await tenants.upsertBatch([{ id: "a", vector: vector(1) }], { tenant: "acme" }), 1);
    assert.equal(await tenants.withTenant("globex").upsertBatch([{ id: "a", vector: vector(1) }]), 1);
    const noTenant = await rejection(tenants.upsertBatch([{ id: "b", vector: vector(1) }]));
    assert.ok(noTenant instanceof FathomError);
    assert.equal(noTenant.code, Code.InvalidArgument);
    assert.equal(await tenants.count(undefined, { tenant: "acme" }), 1);
  });
});
