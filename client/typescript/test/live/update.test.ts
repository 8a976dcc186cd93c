// The Update RPC (`Collection.update`) against the live server at
// $FATHOM_SERVER: metadata merged, keys deleted, metadata replaced, text
// replaced and found again by keyword search, documents chosen by filter and
// by tenant, missing ids skipped, and refusals that change nothing. Every
// test uses its own collection and drops it.
import { strict as assert } from "node:assert";
import { randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { Code, type Collection, type Document, type DocumentInput, FathomClient, type MetadataInput } from "../../src/index.js";
import { expectError } from "../support/refusals.js";

const server = process.env.FATHOM_SERVER;
const DIM = 4;

function uniqueName(prefix: string): string {
  return `${prefix}_${randomBytes(6).toString("hex")}`;
}

function vectorOf(i: number): number[] {
  return Array.from({ length: DIM }, (_, j) => (j === i % DIM ? 1 : 0.25));
}

type Item = { text: string; metadata: MetadataInput };

/** Documents `d0`, `d1`, ... with the given texts and metadata. */
function documents(items: Item[]): DocumentInput[] {
  return items.map((item, i) => ({ id: `d${i}`, vector: vectorOf(i), ...item }));
}


function byId(docs: Document[]): Record<string, Document> {
  return Object.fromEntries(docs.map((doc) => [doc.id, doc]));
}

describe("live update", { skip: server ? false : "FATHOM_SERVER is not set (live tests need a running server)" }, () => {
  let client: FathomClient;
  const created: string[] = [];

  async function collectionWith(items: Item[], options = {}): Promise<Collection> {
    const collection = await client.createCollection(uniqueName("ts_upd"), DIM, options);
    created.push(collection.name);
    if (items.length > 0) await collection.upsertBatch(documents(items));
    return collection;
  }

  before(() => {
    client = new FathomClient(server!, { timeoutMs: 60_000 });
  });

  after(async () => {
    for (const name of created) await client.deleteCollection(name).catch(() => undefined);
    client.close();
  });

  it("merges setMetadata at the top level, keeping the other keys, the text and the vector", async () => {
    const docs = await collectionWith([
      { text: "red fox", metadata: { lang: "en", year: 2020, nested: { x: 1 } } },
      { text: "blue sky", metadata: { lang: "de", year: 2021 } },
    ]);
    const updated = await docs.update({ ids: ["d0"] }, { setMetadata: { year: 2030, status: "read", nested: { y: 2 } } });
    assert.equal(updated, 1);
    const got = byId(await docs.get(["d0", "d1"]));
    assert.deepEqual(got.d0?.metadata, { lang: "en", year: 2030, status: "read", nested: { y: 2 } }); // nested objects are replaced whole
    assert.equal(got.d0?.text, "red fox");
    assert.deepEqual(got.d0?.vector, vectorOf(0));
    assert.deepEqual(got.d1?.metadata, { lang: "de", year: 2021 });
  });

  it("deletes metadata keys, ignoring keys a document lacks", async () => {
    const docs = await collectionWith([
      { text: "a", metadata: { lang: "en", draft: true, year: 2020 } },
      { text: "b", metadata: { lang: "de" } },
    ]);
    assert.equal(await docs.update({ ids: ["d0", "d1"] }, { deleteMetadataKeys: ["draft", "year"] }), 2);
    const got = byId(await docs.get(["d0", "d1"]));
    assert.deepEqual(got.d0?.metadata, { lang: "en" });
    assert.deepEqual(got.d1?.metadata, { lang: "de" });
    assert.equal(await docs.count({ draft: { $exists: true } }), 0);
  });

  it("sets and deletes keys in one update", async () => {
    const docs = await collectionWith([{ text: "a", metadata: { lang: "en", draft: true } }]);
    assert.equal(await docs.update({ ids: ["d0"] }, { setMetadata: { status: "published" }, deleteMetadataKeys: ["draft"] }), 1);
    assert.deepEqual((await docs.get(["d0"]))[0]?.metadata, { lang: "en", status: "published" });
  });

  it("replaces the whole metadata with replaceMetadata, and {} clears it", async () => {
    const docs = await collectionWith([
      { text: "a", metadata: { lang: "en", year: 2020 } },
      { text: "b", metadata: { lang: "de", year: 2021 } },
    ]);
    const when = new Date("2024-05-01T00:00:00Z");
    assert.equal(await docs.update({ ids: ["d0"] }, { setMetadata: { source: "import", when }, replaceMetadata: true }), 1);
    assert.equal(await docs.update({ ids: ["d1"] }, { setMetadata: {}, replaceMetadata: true }), 1);
    const got = byId(await docs.get(["d0", "d1"]));
    assert.deepEqual(got.d0?.metadata, { source: "import", when: "2024-05-01T00:00:00Z" });
    assert.deepEqual(got.d1?.metadata, {});
    assert.equal(await docs.count({ when: { $gte: new Date("2024-01-01T00:00:00Z") } }), 1);
  });

  it("replaces the text, which keyword search then finds by its new words only", async () => {
    const docs = await collectionWith([
      { text: "copper lantern", metadata: { lang: "en" } },
      { text: "granite harbor", metadata: { lang: "en" } },
    ]);
    assert.deepEqual((await docs.searchAll({ text: "copper" })).map((hit) => hit.id), ["d0"]);
    assert.equal(await docs.update({ ids: ["d0"] }, { text: "violet meadow" }), 1);
    const hits = await docs.searchAll({ text: "violet" });
    assert.deepEqual(hits.map((hit) => [hit.id, hit.text]), [["d0", "violet meadow"]]);
    assert.deepEqual(await docs.searchAll({ text: "copper" }), []);
    assert.deepEqual((await docs.get(["d0"]))[0]?.metadata, { lang: "en" }, "the metadata is kept");
  });

  it("clears the text with an empty string", async () => {
    const docs = await collectionWith([{ text: "copper lantern", metadata: {} }]);
    assert.equal(await docs.update({ ids: ["d0"] }, { text: "" }), 1);
    assert.equal((await docs.get(["d0"]))[0]?.text, "");
    assert.deepEqual(await docs.searchAll({ text: "copper" }), []);
  });

  it("updates every document a filter matches and returns how many", async () => {
    const items = Array.from({ length: 30 }, (_, i) => ({ text: `doc ${i}`, metadata: { lang: ["en", "de", "fr"][i % 3]!, i } }));
    const docs = await collectionWith(items);
    const german = await docs.count({ lang: "de" });
    assert.equal(german, 10);
    assert.equal(await docs.update({ filter: { lang: "de" } }, { setMetadata: { reviewed: true } }), german);
    assert.equal(await docs.count({ reviewed: true }), german);
    assert.equal(await docs.count({ reviewed: true, lang: "de" }), german);
    assert.equal(await docs.count({ reviewed: { $exists: false } }), 30 - german);
    assert.equal(await docs.update({ filter: { lang: "es" } }, { setMetadata: { reviewed: true } }), 0, "no match, nothing changed");
    assert.equal(await docs.count({ reviewed: true }), german);
  });

  it("skips ids that do not exist, never creating them", async () => {
    const docs = await collectionWith([{ text: "a", metadata: { lang: "en" } }]);
    assert.equal(await docs.update({ ids: ["d0", "missing"] }, { text: "changed", setMetadata: { status: "read" } }), 1);
    assert.equal(await docs.update({ ids: ["missing", "gone"] }, { text: "changed" }), 0);
    assert.equal(await docs.count(), 1);
    assert.deepEqual(await docs.get(["missing", "gone"]), []);
    assert.deepEqual((await docs.get(["d0"]))[0]?.metadata, { lang: "en", status: "read" });
  });

  it("changes only the documents of the request's tenant", async () => {
    const docs = await collectionWith([], { multiTenant: true });
    const doc = { id: "shared", vector: vectorOf(0), text: "a", metadata: { lang: "en" } };
    await docs.upsertBatch([doc], { tenant: "acme" });
    await docs.upsertBatch([doc], { tenant: "globex" });
    assert.equal(await docs.withTenant("acme").update({ ids: ["shared"] }, { setMetadata: { status: "read" } }), 1);
    assert.deepEqual((await docs.get(["shared"], { tenant: "acme" }))[0]?.metadata, { lang: "en", status: "read" });
    assert.deepEqual((await docs.get(["shared"], { tenant: "globex" }))[0]?.metadata, { lang: "en" });
  });

  it("refuses an update that changes nothing with INVALID_ARGUMENT, changing nothing", async () => {
    const docs = await collectionWith([{ text: "a", metadata: { lang: "en" } }]);
    const before = await docs.get(["d0"]);
    const error = await expectError(docs.update({ ids: ["d0"] }, {}), Code.InvalidArgument);
    assert.match(error.message, /nothing to update/);
    assert.match(error.message, /text.*set_metadata.*delete_metadata_keys/, "the message names the fields to set");
    assert.deepEqual(await docs.get(["d0"]), before);
  });

  it("refuses contradictory changes with violations naming the field, changing nothing", async () => {
    const docs = await collectionWith([{ text: "a", metadata: { lang: "en", draft: true } }]);
    const before = await docs.get(["d0"]);
    const withoutObject = await expectError(docs.update({ ids: ["d0"] }, { text: "b", replaceMetadata: true }), Code.InvalidArgument);
    assert.deepEqual(withoutObject.violations.map((v) => v.field), ["replace_metadata"]);
    const overlap = await expectError(
      docs.update({ ids: ["d0"] }, { setMetadata: { lang: "de" }, deleteMetadataKeys: ["draft", "lang"] }),
      Code.InvalidArgument,
    );
    assert.deepEqual(overlap.violations.map((v) => v.field), ["delete_metadata_keys[1]"]);
    assert.deepEqual(await docs.get(["d0"]), before);
  });

  it("refuses metadata that a merge makes too large with RESOURCE_EXHAUSTED on set_metadata, changing nothing", async () => {
    const docs = await collectionWith([
      { text: "a", metadata: { small: 1 } },
      { text: "b", metadata: { big: "x".repeat(40_000) } },
    ]);
    const before = await docs.get(["d0", "d1"]);
    const error = await expectError(
      docs.update({ ids: ["d0", "d1"] }, { setMetadata: { more: "y".repeat(40_000) } }),
      Code.ResourceExhausted,
    );
    assert.deepEqual(error.violations.map((v) => v.field), ["set_metadata"]);
    assert.match(error.message, /"d1"/, "the message names the document");
    assert.deepEqual(await docs.get(["d0", "d1"]), before, "all or nothing: d0 is unchanged too");
  });

  it("needs exactly one of ids and filter, checked before any call", async () => {
    const docs = client.collection(uniqueName("ts_upd_missing"));
    await assert.rejects(docs.update({} as never, { text: "x" }), /update needs exactly one of ids and filter/);
    await assert.rejects(
      docs.update({ ids: ["a"], filter: { lang: "en" } } as never, { text: "x" }),
      /update needs exactly one of ids and filter/,
    );
  });
});
