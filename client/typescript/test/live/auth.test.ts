// API keys against a real fathom that scripts/test.sh starts with --auth:
// $FATHOM_TEST_AUTH_SERVER, with an admin key in $FATHOM_TEST_ADMIN_KEY and a
// read key bound to tenant "sdk-a" in $FATHOM_TEST_TENANT_KEY (both made by
// `fathom keys create`). Skipped when those are unset.
import { strict as assert } from "node:assert";
import { randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import { Code, FathomClient, FathomError } from "../../src/index.js";

const server = process.env.FATHOM_TEST_AUTH_SERVER;
const adminKey = process.env.FATHOM_TEST_ADMIN_KEY;
const tenantKey = process.env.FATHOM_TEST_TENANT_KEY;

async function refusedWith(code: Code, call: () => Promise<unknown>): Promise<void> {
  await assert.rejects(call, (error: unknown) => error instanceof FathomError && error.code === code);
}

describe("API keys", { skip: server && adminKey && tenantKey ? false : "FATHOM_TEST_AUTH_SERVER/keys unset" }, () => {
  it("refuses every call without a key as UNAUTHENTICATED", async () => {
    const client = new FathomClient(server!, { apiKey: "" });
    try {
      await refusedWith(Code.Unauthenticated, () => client.listCollections());
    } finally {
      client.close();
    }
  });

  it("lets a tenant-bound read key from FATHOM_API_KEY read its tenant only", async () => {
    const admin = new FathomClient(server!, { apiKey: adminKey! });
    const name = `auth_${randomBytes(6).toString("hex")}`;
    const saved = process.env.FATHOM_API_KEY;
    process.env.FATHOM_API_KEY = tenantKey!;
    const reader = new FathomClient(server!);
    try {
      const docs = await admin.createCollection(name, 3, { multiTenant: true });
      await docs.upsert([{ id: "a1", vector: [1, 0, 0] }], { tenant: "sdk-a" });
      await docs.upsert(
        [
          { id: "b1", vector: [0, 1, 0] },
          { id: "b2", vector: [0, 0, 1] },
        ],
        { tenant: "sdk-b" },
      );
      const mine = reader.collection(name, "sdk-a");
      assert.equal(await mine.count(), 1);
      const hits = await mine.searchAll({ vector: [0, 1, 0], limit: 5 });
      assert.deepEqual(
        hits.map((hit) => hit.id),
        ["a1"],
      );
      await refusedWith(Code.PermissionDenied, () => reader.collection(name, "sdk-b").count());
      await refusedWith(Code.PermissionDenied, () => mine.upsert([{ id: "x", vector: [1, 1, 0] }]));
      assert.equal(await docs.count(undefined, { tenant: "sdk-b" }), 2);
      assert.equal(await docs.count(undefined, { tenant: "sdk-a" }), 1);
    } finally {
      if (saved === undefined) delete process.env.FATHOM_API_KEY;
      else process.env.FATHOM_API_KEY = saved;
      reader.close();
      await admin.deleteCollection(name).catch(() => undefined);
      admin.close();
    }
  });
});
