// Aliases (`FathomClient.updateAliases`, `listAliases`) against the live
// server at $FATHOM_SERVER: created, resolved by every call that names a
// collection, switched at once, all or nothing, deleted with their
// collection. Every test uses its own collections and aliases and drops them.
import { strict as assert } from "node:assert";
import { randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { type AliasAction, Code, type Collection, FathomClient } from "../../src/index.js";
import { expectError } from "../support/refusals.js";

const server = process.env.FATHOM_SERVER;
const DIM = 4;

function uniqueName(prefix: string): string {
  return `${prefix}_${randomBytes(6).toString("hex")}`;
}

describe("live aliases", { skip: server ? false : "FATHOM_SERVER is not set (live tests need a running server)" }, () => {
  let client: FathomClient;
  const created: string[] = [];

  async function collectionWith(ids: string[]): Promise<Collection> {
    const collection = await client.createCollection(uniqueName("ts_alias"), DIM);
    created.push(collection.name);
    await collection.upsertBatch(ids.map((id, i) => ({ id, vector: [1, i, 0, 0] })));
    return collection;
  }

  before(() => {
    client = new FathomClient(server!, { timeoutMs: 60_000 });
  });

  after(async () => {
    for (const name of created) await client.deleteCollection(name).catch(() => undefined);
    client.close();
  });

  it("names its collection in every call and switches at once", async () => {
    const blue = await collectionWith(["b"]);
    const green = await collectionWith(["g1", "g2"]);
    const alias = uniqueName("ts_live");
    const made = await client.updateAliases([{ kind: "create", alias, collection: blue.name }]);
    assert.deepEqual(
      made.map((a) => [a.alias, a.collection]),
      [[alias, blue.name]],
    );
    assert.ok(made[0]!.updateTime instanceof Date);
    const live = client.collection(alias);
    assert.deepEqual((await live.searchAll({ vector: [1, 0, 0, 0], limit: 5 })).map((h) => h.id), ["b"]);
    assert.equal((await client.getCollection(alias)).name, blue.name);

    await client.updateAliases([{ kind: "switch", alias, collection: green.name }]);
    assert.deepEqual((await live.searchAll({ vector: [1, 0, 0, 0], limit: 5 })).map((h) => h.id).sort(), ["g1", "g2"]);
    await live.upsertBatch([{ id: "through_alias", vector: [0, 0, 1, 0] }]);
    assert.equal(await green.count(), 3);
    assert.equal(await blue.count(), 1);
    assert.deepEqual((await client.listAliases(green.name)).map((a) => a.alias), [alias]);

    await client.updateAliases([{ kind: "delete", alias }]);
    assert.ok(!(await client.listAliases()).some((a) => a.alias === alias));
  });

  it("applies all actions or none, names the refused field, and goes with its collection", async () => {
    const docs = await collectionWith(["a"]);
    const alias = uniqueName("ts_alias");
    await client.updateAliases([{ kind: "create", alias, collection: docs.name }]);
    await expectError(
      client.updateAliases([
        { kind: "delete", alias },
        { kind: "create", alias: uniqueName("ts_x"), collection: "ts_nowhere" },
      ]),
      Code.NotFound,
      /^actions\[1\]\.create_alias\.collection$/,
    );
    assert.deepEqual((await client.listAliases(docs.name)).map((a) => a.alias), [alias]);
    await expectError(client.updateAliases([{ kind: "create", alias: docs.name, collection: docs.name }]), Code.AlreadyExists);
    await expectError(client.updateAliases([]), Code.InvalidArgument, /^actions$/);
    await assert.rejects(client.updateAliases([{ kind: "rename" } as unknown as AliasAction]), TypeError);

    await client.deleteCollection(docs.name);
    assert.ok(!(await client.listAliases()).some((a) => a.alias === alias));
  });
});
