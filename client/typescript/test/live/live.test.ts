// End-to-end tests against a running Fathom server at $FATHOM_SERVER.
// Every test works in collections with random names (the server may be shared)
// and drops them afterwards.
import { strict as assert } from "node:assert";
import { randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";
import {
  Code,
  type Collection,
  type DocumentInput,
  FathomClient,
  type FilterSpec,
  type Hit,
  UpsertRejectedError,
} from "../../src/index.js";
import { expectError } from "../support/refusals.js";
import { rng } from "../support/random.js";

const server = process.env.FATHOM_SERVER;
const DIM = 32;
const N = 10_000;
const WORDS = "amber basil cedar delta ember fjord granite harbor indigo juniper kestrel lagoon meadow nectar orchid pebble quartz river saffron tundra".split(" ");
const LANGS = ["en", "de", "fr"] as const;

type Meta = {
  i: number;
  year: number;
  lang: string;
  tags: string[];
  draft?: boolean;
};
type SourceDoc = DocumentInput & { vector: number[]; text: string; metadata: Meta };

function makeCorpus(n: number, seed = 7): SourceDoc[] {
  const random = rng(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  return Array.from({ length: n }, (_, i) => {
    const words = Array.from({ length: 3 + Math.floor(random() * 4) }, () => pick(WORDS));
    const metadata: Meta = { i, year: 2015 + (i % 10), lang: LANGS[i % 3]!, tags: [pick(WORDS), pick(WORDS)] };
    if (i % 7 === 0) metadata.draft = true;
    return {
      id: `doc-${String(i).padStart(5, "0")}`,
      vector: Array.from({ length: DIM }, () => random() * 2 - 1),
      text: words.join(" "),
      metadata,
    };
  });
}

function uniqueName(prefix: string): string {
  return `${prefix}_${randomBytes(6).toString("hex")}`;
}

function ids(corpus: SourceDoc[], predicate: (m: Meta) => boolean): string[] {
  return corpus.filter((d) => predicate(d.metadata)).map((d) => d.id).sort();
}

describe("live server", { skip: server ? false : "FATHOM_SERVER is not set (live tests need a running server)" }, () => {
  const corpus = makeCorpus(N);
  let client: FathomClient;
  let docs: Collection;
  const created: string[] = [];

  async function newCollection(prefix: string, options = {}): Promise<Collection> {
    const collection = await client.createCollection(uniqueName(prefix), DIM, options);
    created.push(collection.name);
    return collection;
  }

  before(async () => {
    client = new FathomClient(server!, { timeoutMs: 60_000 });
    // Immediate, so that its searches go through the HNSW graph as they did
    // before collections built their index automatically (10,000 vectors of
    // 32 dimensions stay below the indexing threshold, where searches are exact).
    docs = await newCollection("ts_corpus", { indexBuild: "immediate" });
  });

  after(async () => {
    for (const name of created) await client.deleteCollection(name).catch(() => undefined);
    client.close();
  });

  it("streams 10,000 documents and counts them", async () => {
    let progress = 0;
    const result = await docs.upsert(corpus, { batchSize: 500, onProgress: (n) => (progress += n) });
    assert.equal(result.documentsWritten, N);
    assert.equal(result.batches, N / 500);
    assert.equal(progress, N);
    assert.equal(await docs.count(), N);
    assert.equal((await docs.stats()).documentCount, N);
  });

  it("gets or creates a collection, checking the settings of an existing one", async () => {
    const name = uniqueName("ts_goc");
    created.push(name);
    const [first, second] = await Promise.all([
      client.getOrCreateCollection(name, DIM, { metric: "l2" }),
      client.getOrCreateCollection(name, DIM, { metric: "l2" }),
    ]);
    assert.equal(first.name, name);
    assert.equal(second.name, name);
    await first.upsert([{ id: "a", vector: new Array(DIM).fill(0.5) }]);
    assert.equal(await (await client.getOrCreateCollection(name, DIM, { metric: "l2" })).count(), 1);
    const otherDimension = await expectError(client.getOrCreateCollection(name, DIM + 1, { metric: "l2" }), Code.AlreadyExists);
    assert.match(otherDimension.message, new RegExp(`exists with dimension ${DIM}`));
    const otherMetric = await expectError(client.getOrCreateCollection(name, DIM), Code.AlreadyExists);
    assert.match(otherMetric.message, /metric l2/);
  });

  it("reads collection settings", async () => {
    const info = await docs.info();
    assert.deepEqual([info.name, info.dimension, info.metric, info.language, info.multiTenant], [docs.name, DIM, "cosine", "english", false]);
    assert.equal(info.index.kind, "hnsw");
    assert.equal(info.index.kind === "hnsw" ? info.index.precision : undefined, "half", "half precision by default");
    assert.ok((await client.listCollections()).some((c) => c.name === docs.name));
  });

  it("searches a collection with a deferred index exactly, then builds the index", async () => {
    const deferred = await newCollection("ts_deferred", { deferIndex: true });
    assert.equal((await deferred.info()).indexState, "deferred");
    const small = makeCorpus(300, 21);
    await deferred.upsert(small, { batchSize: 100 });
    const target = small[42]!;

    const [before] = await deferred.searchAll({ vector: target.vector, limit: 1 }); // an exact scan: no index yet
    assert.equal(before?.id, target.id);
    assert.ok(Math.abs((before?.score ?? 0) - 1) < 1e-4);

    const info = await client.buildIndex(deferred.name);
    assert.deepEqual([info.name, info.indexState], [deferred.name, "ready"]);
    assert.equal((await client.getCollection(deferred.name)).indexState, "ready");
    const [after] = await deferred.searchAll({ vector: target.vector, limit: 1 });
    assert.equal(after?.id, target.id);
    assert.equal((await deferred.buildIndex()).indexState, "ready"); // ready already: resolves at once
  });

  it("builds a deferred index at the end of an upsert with buildIndexAtEnd", async () => {
    const deferred = await newCollection("ts_deferred", { deferIndex: true });
    const small = makeCorpus(300, 22);
    const result = await deferred.upsert(small, { batchSize: 100, buildIndexAtEnd: true });
    assert.equal(result.committedDocuments, 300);
    assert.equal((await deferred.info()).indexState, "ready");
    const [hit] = await deferred.searchAll({ vector: small[7]!.vector, limit: 1 });
    assert.equal(hit?.id, small[7]!.id);
  });

  it("builds the index of a new collection automatically, exact until then", async () => {
    const info = await (await newCollection("ts_automatic")).info();
    assert.deepEqual([info.indexBuild, info.indexState], ["automatic", "deferred"]);
  });

  it("reports the index of an immediate collection ready from its creation", async () => {
    const info = await (await newCollection("ts_immediate", { indexBuild: "immediate" })).info();
    assert.deepEqual([info.indexBuild, info.indexState], ["immediate", "ready"]);
    assert.deepEqual([(await docs.info()).indexBuild, (await docs.info()).indexState], ["immediate", "ready"]);
    assert.equal((await (await newCollection("ts_noindex", { index: "none" })).info()).indexState, "ready");
  });

  it("leaves the index of an on_request or deferIndex collection to buildIndex", async () => {
    for (const options of [{ indexBuild: "on_request" as const }, { deferIndex: true }]) {
      const deferred = await newCollection("ts_deferred", options);
      const info = await deferred.info();
      assert.deepEqual([info.indexBuild, info.indexState], ["on_request", "deferred"]);
      assert.equal((await deferred.buildIndex()).indexState, "ready");
    }
  });

  it("refuses deferIndex with another indexBuild with INVALID_ARGUMENT on index_build", async () => {
    for (const indexBuild of ["automatic", "immediate"] as const) {
      const name = uniqueName("ts_deferred");
      created.push(name); // dropped afterwards, should it be created
      await expectError(client.createCollection(name, DIM, { deferIndex: true, indexBuild }), Code.InvalidArgument, /^index_build$/);
    }
    // deferIndex and on_request say the same thing.
    const same = await newCollection("ts_deferred", { deferIndex: true, indexBuild: "on_request" });
    assert.equal((await same.info()).indexBuild, "on_request");
  });

  it("builds an automatic collection's index below the threshold with buildIndexAtEnd", async () => {
    const automatic = await newCollection("ts_automatic");
    const small = makeCorpus(300, 24);
    await automatic.upsert(small, { batchSize: 100 });
    assert.equal((await automatic.info()).indexState, "deferred"); // 300 small vectors: far below the threshold
    await automatic.upsert(small.slice(0, 10), { buildIndexAtEnd: true });
    const info = await automatic.info();
    assert.deepEqual([info.indexBuild, info.indexState], ["automatic", "ready"]);
    const [hit] = await automatic.searchAll({ vector: small[7]!.vector, limit: 1 });
    assert.equal(hit?.id, small[7]!.id);
  });

  it("refuses deferIndex without an index with INVALID_ARGUMENT", async () => {
    const name = uniqueName("ts_deferred");
    created.push(name); // dropped afterwards, should it be created
    await expectError(client.createCollection(name, DIM, { index: "none", deferIndex: true }), Code.InvalidArgument, /^defer_index$/);
  });

  const filters: [string, FilterSpec, (m: Meta) => boolean][] = [
    ["eq", { lang: "en" }, (m) => m.lang === "en"],
    ["range", { year: { $gte: 2020, $lt: 2023 } }, (m) => m.year >= 2020 && m.year < 2023],
    ["in", { lang: { $in: ["de", "fr"] } }, (m) => m.lang === "de" || m.lang === "fr"],
    ["nin", { lang: { $nin: ["de", "fr"] } }, (m) => m.lang === "en"],
    ["or", { $or: [{ year: 2015 }, { lang: "de" }] }, (m) => m.year === 2015 || m.lang === "de"],
    ["not", { $not: { lang: "en" } }, (m) => m.lang !== "en"],
    ["exists", { draft: { $exists: true } }, (m) => m.draft === true],
    ["not exists", { draft: { $exists: false } }, (m) => m.draft === undefined],
    ["contains", { tags: { $contains: "amber" } }, (m) => m.tags.includes("amber")],
    ["and + ne", { $and: [{ lang: { $ne: "en" } }, { year: 2019 }] }, (m) => m.lang !== "en" && m.year === 2019],
  ];
  for (const [name, spec, predicate] of filters) {
    it(`counts with a ${name} filter`, async () => {
      assert.equal(await docs.count(spec), ids(corpus, predicate).length);
    });
  }

  it("counts by id", async () => {
    assert.equal(await docs.count({ $id: { $in: ["doc-00001", "doc-00002", "nope"] } }), 2);
  });

  it("runs a hybrid search with a filter, streaming hits with per-leg ranks", async () => {
    const spec: FilterSpec = { year: { $gte: 2020 }, lang: "en" };
    const target = corpus.find((d) => d.metadata.lang === "en" && d.metadata.year >= 2020)!;
    const word = target.text.split(" ")[0]!;
    const hits: Hit[] = [];
    for await (const hit of docs.search({ vector: target.vector, text: word, filter: spec, limit: 20, candidates: 1000 })) {
      hits.push(hit);
    }
    assert.equal(hits.length, 20);
    for (const hit of hits) {
      assert.ok((hit.metadata.year as number) >= 2020 && hit.metadata.lang === "en", JSON.stringify(hit));
      assert.ok(hit.vectorRank !== undefined || hit.textRank !== undefined);
      if (hit.textRank !== undefined) {
        assert.ok(hit.text.split(" ").includes(word));
        assert.ok((hit.textScore ?? 0) > 0);
      }
    }
    const scores = hits.map((h) => h.score);
    assert.deepEqual(scores, [...scores].sort((a, b) => b - a));
    assert.ok(hits.some((h) => h.vectorRank !== undefined && h.textRank !== undefined));

    const [best] = await docs.searchAll({ vector: target.vector, filter: spec, limit: 1, exact: true });
    assert.equal(best?.id, target.id);
    assert.equal(best?.vectorRank, 1);
    assert.ok(Math.abs((best?.score ?? 0) - 1) < 1e-4);
  });

  it("runs keyword-only and id-only searches", async () => {
    const keyword = await docs.searchAll({ text: "saffron", filter: { lang: "fr" }, limit: 5 });
    assert.ok(keyword.length > 0);
    for (const hit of keyword) {
      assert.equal(hit.vectorRank, undefined);
      assert.ok(hit.textRank !== undefined && hit.text.split(" ").includes("saffron") && hit.metadata.lang === "fr");
    }
    const bare = await docs.searchAll({ vector: corpus[123]!.vector, include: [], limit: 3, exact: true });
    assert.equal(bare[0]?.id, corpus[123]!.id);
    assert.deepEqual([bare[0]?.text, bare[0]?.metadata], ["", {}]);
  });

  it("gets documents by id", async () => {
    const got = await docs.get(["doc-00010", "missing", "doc-00003"]);
    assert.deepEqual(got.map((d) => d.id), ["doc-00010", "doc-00003"]);
    assert.equal(got[0]?.text, corpus[10]!.text);
    assert.equal(got[0]?.metadata.year, corpus[10]!.metadata.year);
    got[0]?.vector?.forEach((x, i) => assert.ok(Math.abs(x - corpus[10]!.vector[i]!) < 1e-6));
    const [idOnly] = await docs.get(["doc-00010"], { include: [] });
    assert.deepEqual(idOnly, { id: "doc-00010", text: "", metadata: {} });
  });

  it("scrolls in id order", async () => {
    const scrolled: string[] = [];
    for await (const doc of docs.scroll({ filter: { year: 2016 }, include: [] })) scrolled.push(doc.id);
    assert.deepEqual(scrolled, ids(corpus, (m) => m.year === 2016));
  });

  it("deletes by filter and by ids, then counts again", async () => {
    const french = ids(corpus, (m) => m.lang === "fr").length;
    assert.equal(await docs.delete({ filter: { lang: "fr" } }), french);
    assert.equal(await docs.count(), N - french);
    assert.equal(await docs.count({ lang: "fr" }), 0);
    assert.equal(await docs.delete({ ids: ["doc-00000", "doc-00001", "doc-00002"] }), 2); // doc-00002 was French
    assert.equal(await docs.count(), N - french - 2);
  });

  it("writes to tenants of a multi-tenant collection", async () => {
    const tenants = await newCollection("ts_tenants", { multiTenant: true });
    const small = makeCorpus(40, 5);
    await tenants.upsert(small.slice(0, 30), { tenant: "acme" });
    await tenants.withTenant("globex").upsert(small.slice(30));
    assert.equal(await tenants.count(undefined, { tenant: "acme" }), 30);
    assert.equal(await tenants.withTenant("globex").count(), 10);
    await expectError(tenants.count(), Code.InvalidArgument);
  });

  it("reports an unknown collection as NOT_FOUND", async () => {
    const missing = client.collection(uniqueName("missing"));
    await expectError(missing.count(), Code.NotFound);
    await expectError(missing.searchAll({ vector: new Array(DIM).fill(0) }), Code.NotFound);
    await expectError(missing.get(["a"]), Code.NotFound);
    await expectError(missing.upsert([{ id: "a", vector: new Array(DIM).fill(0) }]), Code.NotFound);
    await expectError(client.getCollection(missing.name), Code.NotFound);
    await expectError(client.buildIndex(missing.name), Code.NotFound);
  });

  it("reports a wrong vector dimension as INVALID_ARGUMENT with a field violation", async () => {
    const small = await newCollection("ts_dim");
    const error = await expectError(
      small.upsert([
        { id: "ok", vector: new Array(DIM).fill(0.1) },
        { id: "bad", vector: new Array(DIM + 1).fill(0.1) },
      ]),
      Code.InvalidArgument,
      /^documents\[1\].*vector/,
    );
    assert.ok(error instanceof UpsertRejectedError);
    assert.equal(await small.count(), 0);
    await expectError(small.searchAll({ vector: new Array(DIM - 1).fill(0.1) }), Code.InvalidArgument, /vector/);
  });

  for (const name of ["Bad-Name", "1starts_with_digit", "", "x".repeat(49)]) {
    it(`refuses the collection name ${JSON.stringify(name)} with INVALID_ARGUMENT`, async () => {
      await expectError(client.createCollection(name, DIM), Code.InvalidArgument, /name/);
    });
  }

  it("refuses an existing name with ALREADY_EXISTS", async () => {
    await expectError(client.createCollection(docs.name, DIM), Code.AlreadyExists);
  });
});
