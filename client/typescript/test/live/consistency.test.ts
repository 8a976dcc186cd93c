// Consistency tokens against a real server: a client keeps the newest token
// of its writes and still reads them. A server without replicas serves every
// read from the primary; the routing to replicas is tested in Rust
// (tests/integration/replicas.rs).
import { strict as assert } from "node:assert";
import { randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import { FathomClient } from "../../src/index.js";

const server = process.env.FATHOM_SERVER;

describe("live consistency tokens", { skip: server ? false : "FATHOM_SERVER is not set (live tests need a running server)" }, () => {
  it("a client keeps the token of its writes, newest first, and reads them", async () => {
    const client = new FathomClient(server!, { timeoutMs: 60_000 });
    const name = `ts_tokens_${randomBytes(6).toString("hex")}`;
    try {
      assert.equal(client.consistencyToken, undefined);
      const docs = await client.createCollection(name, 3);
      const created = client.consistencyToken;
      assert.ok(created);
      await docs.upsertBatch([{ id: "a", vector: [1, 0, 0] }]);
      assert.notEqual(client.consistencyToken, created);
      await docs.upsert([{ id: "b", vector: [0, 1, 0] }]);
      assert.deepEqual((await docs.get(["a", "b"])).map((d) => d.id), ["a", "b"]);
      assert.equal(await docs.count(), 2);
    } finally {
      await client.deleteCollection(name).catch(() => undefined);
      client.close();
    }
  });
});
