// The UpsertStream protocol against the live server at $FATHOM_SERVER:
// sequence numbers and acks, the in-flight window, rejected batches, resume
// across calls (an interrupted upsert run again with the same stream id) and
// inside a call (the connection cut for real by a TCP link in between), and
// the unary Upsert. Every test uses its own collection and drops it.
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
  UpsertRejectedError,
  type UpsertSummary,
} from "../../src/index.js";
import { UpsertStreamRequestSchema } from "../../src/gen/fathom/v1/documents_pb.js";
import { CuttableLink } from "../support/netcut.js";

const server = process.env.FATHOM_SERVER;
const DIM = 8;

type Doc = DocumentInput & { vector: number[]; text: string };

/** Deterministic pseudo-random numbers in [0, 1) (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

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

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

class Interrupted extends Error {}

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

  /** The highest sequence number the server committed for a stream id, read by opening it on the raw Connect client. */
  async function committedBatches(collection: string, streamId: string, tenant = ""): Promise<number> {
    const open = create(UpsertStreamRequestSchema, { request: { case: "open", value: { collection, tenant, streamId } } });
    const responses = [];
    async function* requests() {
      yield open;
    }
    for await (const response of client.documentsRpc.upsertStream(requests(), { timeoutMs: 30_000 })) responses.push(response);
    assert.equal(responses.length, 1);
    const opened = responses[0]!.response;
    assert.equal(opened.case, "opened");
    return Number(opened.value!.nextSequence) - 1;
  }

  /** committedBatches once it stops changing: after a call is cancelled, the server may still commit the batch it was writing. */
  async function settledCommittedBatches(collection: string, streamId: string): Promise<number> {
    let last = await committedBatches(collection, streamId);
    for (;;) {
      await sleep(300);
      const now = await committedBatches(collection, streamId);
      if (now === last) return now;
      last = now;
    }
  }

  before(() => {
    client = new FathomClient(server!, { timeoutMs: 60_000 });
  });

  after(async () => {
    for (const name of created) await client.deleteCollection(name).catch(() => undefined);
    client.close();
  });

  for (const window of [1, 4]) {
    it(`numbers and acknowledges many batches (window ${window})`, async () => {
      const docs = await newCollection();
      const n = 3000;
      const size = 50;
      const streamId = `seq-${docs.name}`;
      let pulled = 0;
      let ackedDocs = 0;
      let mostAhead = 0;
      const acks: number[] = [];
      function* source() {
        for (const doc of makeDocs(n)) {
          pulled += 1;
          mostAhead = Math.max(mostAhead, pulled - ackedDocs);
          yield doc;
        }
      }
      const summary = await docs.upsert(source(), {
        batchSize: size,
        streamId,
        maxInFlight: window,
        onProgress: (documents) => {
          ackedDocs += documents;
          acks.push(documents);
        },
      });
      assert.deepEqual({ ...summary, elapsedMs: 0 }, {
        documentsWritten: n,
        batches: n / size,
        skippedDocuments: 0,
        skippedBatches: 0,
        alreadyCommitted: 0,
        reconnects: 0,
        elapsedMs: 0,
      } satisfies UpsertSummary);
      assert.ok(summary.elapsedMs > 0);
      assert.deepEqual(acks, new Array(n / size).fill(size));
      assert.equal(await docs.count(), n);
      // The batches were numbered 1..60 and every one was committed.
      assert.equal(await committedBatches(docs.name, streamId), n / size);
      // Never more unacknowledged documents than the window plus the batch being cut.
      assert.ok(mostAhead <= size * (window + 1), `${mostAhead} documents ahead`);
    });
  }

  it("handles an empty input and refuses bad limits before sending", async () => {
    const docs = await newCollection();
    const summary = await docs.upsert([], { streamId: `empty-${docs.name}` });
    assert.deepEqual([summary.documentsWritten, summary.batches, summary.skippedDocuments], [0, 0, 0]);
    const one = makeDocs(1);
    await assert.rejects(docs.upsert(one, { batchSize: 0 }), /batchSize must be an integer >= 1/);
    await assert.rejects(docs.upsert(one, { batchBytes: 0 }), /batchBytes must be an integer >= 1/);
    await assert.rejects(docs.upsert(one, { maxInFlight: 0 }), /maxInFlight/);
    await assert.rejects(docs.upsert([{ id: "a" } as DocumentInput]), /#0 has no vector/);
    assert.equal(await docs.count(), 0);
  });

  it("stops at a rejected batch in the middle of a stream; the batches before it are stored", async () => {
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
    assert.equal(error.sequence, 13n);
    assert.equal(error.batchOffset, 1200);
    assert.equal(await docs.count({ $id: { $in: ids.slice(0, 1200) } }), 1200);
    assert.equal(await docs.count({ $id: { $in: ids.slice(1200, 1300) } }), 0);
    // Batches already in flight behind the rejected one may be stored too, and are counted.
    const stored = await docs.count();
    assert.equal(error.documentsWritten, stored);
    assert.ok(stored >= 1200 && stored <= 1200 + 3 * size && stored % size === 0, `${stored} stored`);
  });

  it("resumes an interrupted upsert with the same stream id, skipping what was committed", async () => {
    const docs = await newCollection();
    const n = 3000;
    const source = makeDocs(n, 2);
    const streamId = `resume-${docs.name}`;
    // Batches of at most 100 documents and 20 kB: texts vary, so sizes vary.
    const settings = { batchSize: 100, batchBytes: 20_000, streamId };
    let acked = 0;
    function* interrupting() {
      for (const doc of source) {
        if (acked >= 8) throw new Interrupted(`interrupted after ${acked} acknowledged batches`);
        yield doc;
      }
    }
    const error = await rejection(docs.upsert(interrupting(), { ...settings, onProgress: () => (acked += 1) }));
    assert.ok(error instanceof Interrupted, String(error));
    const committed = await settledCommittedBatches(docs.name, streamId);
    assert.ok(committed >= 8, `${committed} committed`);
    const stored = await docs.count();
    assert.ok(stored > 0 && stored < n);

    let progress = 0;
    const second = await docs.upsert(source, { ...settings, onProgress: (documents) => (progress += documents) });
    assert.equal(second.skippedBatches, committed);
    assert.equal(second.skippedDocuments, stored); // exactly what the first run committed
    assert.equal(second.documentsWritten, n - stored);
    assert.equal(progress, n); // progress covers skipped batches too
    assert.deepEqual([second.alreadyCommitted, second.reconnects], [0, 0]);
    assert.equal(await docs.count(), n);
    const got = await docs.get([source[0]!.id, source[n - 1]!.id], { include: ["text"] });
    assert.deepEqual(got.map((d) => d.text), [source[0]!.text, source[n - 1]!.text]);

    // Run again: everything is skipped, nothing sent.
    const third = await docs.upsert(source, settings);
    assert.deepEqual([third.skippedDocuments, third.documentsWritten, third.batches], [n, 0, 0]);
    assert.equal(third.skippedBatches, committed + second.batches);
    assert.equal(await docs.count(), n);
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
    assert.ok(error instanceof FathomError, String(error));
    assert.equal(error.code, Code.Canceled);
    const committed = await settledCommittedBatches(docs.name, streamId);
    assert.ok(committed >= 5 && committed < n / 50, `${committed} committed`);
    const stored = await docs.count();
    assert.equal(stored, committed * 50);

    const summary = await docs.upsert(source, { batchSize: 50, streamId });
    assert.deepEqual([summary.skippedDocuments, summary.skippedBatches], [stored, committed]);
    assert.equal(summary.documentsWritten, n - stored);
    assert.equal(await docs.count(), n);
  });

  it("reconnects inside the call when the connection is cut, resending only what was not committed", async () => {
    const docs = await newCollection();
    const n = 3000;
    const size = 50;
    const streamId = `cut-${docs.name}`;
    const link = await CuttableLink.start(server!);
    const linked = new FathomClient(link.target, { reconnectDelaysMs: new Array(10).fill(200) });
    let summary: UpsertSummary;
    try {
      let acked = 0;
      summary = await linked.collection(docs.name).upsert(makeDocs(n, 6), {
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
    // Batches committed before a cut whose acks were lost count as written;
    // nothing committed was sent again (it would have come back `alreadyCommitted`).
    assert.deepEqual(
      [summary.documentsWritten, summary.batches, summary.skippedDocuments, summary.alreadyCommitted],
      [n, n / size, 0, 0],
    );
    assert.equal(await docs.count(), n);
    assert.equal(await committedBatches(docs.name, streamId), n / size);
  });

  it("fails with UNAVAILABLE when the connection is cut without a stream id", async () => {
    const docs = await newCollection();
    const link = await CuttableLink.start(server!);
    const linked = new FathomClient(link.target, { reconnectDelaysMs: [0, 0, 0] });
    try {
      let acked = 0;
      const error = await rejection(
        linked.collection(docs.name).upsert(makeDocs(2000), {
          batchSize: 50,
          onProgress: () => {
            acked += 1;
            if (acked === 3) link.cut();
          },
        }),
      );
      assert.ok(error instanceof FathomError, String(error));
      assert.equal(error.code, Code.Unavailable, error.message);
    } finally {
      linked.close();
      await link.close();
    }
    const stored = await docs.count();
    assert.ok(stored >= 150 && stored < 2000, `${stored} stored`);
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
