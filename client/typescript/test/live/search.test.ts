// Search by example (`exampleId`) and paging (`offset`) against the live
// server at $FATHOM_SERVER: an example search ranks what a search by the
// example's stored vector ranks, without the example itself, alone, with a
// filter and with a text; pages of one search with fixed candidates are the
// slices of one longer search; refusals name their field. Every collection
// has a random name and is dropped afterwards.
import { strict as assert } from "node:assert";
import { randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { Code, type Collection, type DocumentInput, FathomClient, type Hit, type SearchQuery } from "../../src/index.js";
import { expectError } from "../support/refusals.js";
import { rng } from "../support/random.js";

const server = process.env.FATHOM_SERVER;
const DIM = 8;
const N = 200;
const WORDS = "amber basil cedar delta ember fjord granite harbor indigo juniper".split(" ");

function uniqueName(prefix: string): string {
  return `${prefix}_${randomBytes(6).toString("hex")}`;
}

/** Documents `d000`..: random vectors, texts of three to five words, `lang` "en" or "de" by turns. */
function corpus(n: number, seed = 11): DocumentInput[] {
  const random = rng(seed);
  const pick = () => WORDS[Math.floor(random() * WORDS.length)]!;
  return Array.from({ length: n }, (_, i) => ({
    id: `d${String(i).padStart(3, "0")}`,
    vector: Array.from({ length: DIM }, () => random() * 2 - 1),
    text: Array.from({ length: 3 + Math.floor(random() * 3) }, pick).join(" "),
    metadata: { i, lang: i % 2 === 0 ? "en" : "de" },
  }));
}

function idsOf(hits: Hit[]): string[] {
  return hits.map((hit) => hit.id);
}

describe("live search by example and paging", { skip: server ? false : "FATHOM_SERVER is not set (live tests need a running server)" }, () => {
  const docs = corpus(N);
  const example = docs[42]!;
  let client: FathomClient;
  let collection: Collection;
  /** The example's vector as the server stores it (single precision). */
  let storedVector: number[];
  const created: string[] = [];

  before(async () => {
    client = new FathomClient(server!, { timeoutMs: 60_000 });
    collection = await client.createCollection(uniqueName("ts_example"), DIM);
    created.push(collection.name);
    await collection.upsert(docs);
    const [stored] = await collection.get([example.id], { include: ["vector"] });
    storedVector = stored!.vector!;
  });

  after(async () => {
    for (const name of created) await client.deleteCollection(name).catch(() => undefined);
    client.close();
  });

  /** Asserts an example search equals a search by the stored vector that filters the example out (ids in order, scores). */
  async function assertSameAsStoredVector(query: SearchQuery, filterOut: SearchQuery["filter"]): Promise<Hit[]> {
    const byExample = await collection.searchAll({ ...query, exampleId: example.id });
    const byVector = await collection.searchAll({ ...query, vector: storedVector, filter: filterOut });
    assert.deepEqual(idsOf(byExample), idsOf(byVector));
    byExample.forEach((hit, i) => assert.ok(Math.abs(hit.score - byVector[i]!.score) < 1e-9, `${hit.score} vs ${byVector[i]!.score}`));
    assert.ok(!idsOf(byExample).includes(example.id), "the example is not its own neighbour");
    return byExample;
  }

  it("finds the nearest neighbours of the example's stored vector, without the example itself", async () => {
    const neighbours = await collection.searchAll({ exampleId: example.id, limit: 5, exact: true });
    const withItself = await collection.searchAll({ vector: storedVector, limit: 6, exact: true });
    assert.equal(withItself[0]?.id, example.id);
    assert.deepEqual(idsOf(neighbours), idsOf(withItself.slice(1)));
    for (const hit of neighbours) assert.ok(hit.vectorRank !== undefined && hit.textRank === undefined);

    const approximate = await collection.searchAll({ exampleId: example.id, limit: 20 });
    assert.equal(approximate.length, 20);
    assert.ok(!idsOf(approximate).includes(example.id));
  });

  it("searches by example with a filter, the example left out even when the filter matches it", async () => {
    const same = await assertSameAsStoredVector(
      { filter: { lang: "en" }, limit: 10, exact: true },
      { lang: "en", $id: { $ne: example.id } },
    );
    assert.equal(same.length, 10);
    for (const hit of same) assert.equal(hit.metadata.lang, "en");
    const other = await collection.searchAll({ exampleId: example.id, filter: { lang: "de" }, limit: 10, exact: true });
    assert.equal(other.length, 10);
    for (const hit of other) assert.equal(hit.metadata.lang, "de");
  });

  it("runs a hybrid search by example with a text, the example left out of both legs", async () => {
    const word = example.text!.split(" ")[0]!;
    const hits = await assertSameAsStoredVector(
      { text: word, limit: 20, candidates: N, exact: true },
      { $id: { $ne: example.id } },
    );
    assert.equal(hits.length, 20);
    assert.ok(hits.some((hit) => hit.vectorRank !== undefined && hit.textRank !== undefined));
    for (const hit of hits) if (hit.textRank !== undefined) assert.ok(hit.text.split(" ").includes(word), hit.text);
    const scores = hits.map((hit) => hit.score);
    assert.deepEqual(scores, [...scores].sort((a, b) => b - a));
  });

  it("reports an example id that names no document as NOT_FOUND", async () => {
    const error = await expectError(collection.searchAll({ exampleId: "no-such-doc" }), Code.NotFound);
    assert.match(error.message, /no-such-doc/);
  });

  it("looks the example up in the call's tenant only", async () => {
    const tenants = await client.createCollection(uniqueName("ts_example_mt"), DIM, { multiTenant: true });
    created.push(tenants.name);
    await tenants.upsertBatch(docs.slice(0, 10), { tenant: "acme" });
    await tenants.upsertBatch(docs.slice(10, 20), { tenant: "globex" });
    const hits = await tenants.searchAll({ exampleId: docs[3]!.id, tenant: "acme", limit: 20, exact: true });
    assert.deepEqual(idsOf(hits).sort(), docs.slice(0, 10).map((d) => d.id).filter((id) => id !== docs[3]!.id));
    await expectError(tenants.searchAll({ exampleId: docs[3]!.id, tenant: "globex" }), Code.NotFound);
  });

  it("refuses an example id with a vector as INVALID_ARGUMENT on example_id", async () => {
    await expectError(collection.searchAll({ exampleId: example.id, vector: storedVector }), Code.InvalidArgument, /^example_id$/);
  });

  for (const [name, query] of [
    ["a vector search", { vector: docs[7]!.vector }],
    ["a hybrid search", { vector: docs[7]!.vector, text: "cedar" }],
    ["a search by example", { exampleId: example.id }],
  ] as const) {
    it(`pages ${name} with fixed candidates: three pages of 5 are the slices of one search of 15`, async () => {
      const whole = await collection.searchAll({ ...query, limit: 15, candidates: 15 });
      assert.equal(whole.length, 15);
      const pages: Hit[][] = [];
      for (let page = 0; page < 3; page += 1) {
        pages.push(await collection.searchAll({ ...query, limit: 5, offset: page * 5, candidates: 15 }));
      }
      pages.forEach((hits, page) => assert.deepEqual(idsOf(hits), idsOf(whole.slice(page * 5, page * 5 + 5)), `page ${page}`));
    });
  }

  it("refuses offset + limit above 1000 as INVALID_ARGUMENT on offset, and accepts 1000", async () => {
    await expectError(collection.searchAll({ vector: storedVector, limit: 10, offset: 991 }), Code.InvalidArgument, /^offset$/);
    await expectError(collection.searchAll({ text: "amber", limit: 1000, offset: 1 }), Code.InvalidArgument, /^offset$/);
    const last = await collection.searchAll({ vector: storedVector, limit: 10, offset: 990 });
    assert.deepEqual(last, []);
    const tail = await collection.searchAll({ vector: storedVector, limit: 10, offset: N - 5, candidates: N + 5, exact: true });
    assert.equal(tail.length, 5);
    await expectError(
      collection.searchAll({ vector: storedVector, limit: 10, offset: N - 5, candidates: N }),
      Code.InvalidArgument,
      /^candidates$/,
    );
  });
});
