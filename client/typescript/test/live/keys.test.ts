// API keys managed over gRPC (the Keys service), against the fathom that
// scripts/test.sh starts with --auth: $FATHOM_TEST_AUTH_SERVER, admin key
// $FATHOM_TEST_ADMIN_KEY, read key bound to tenant "sdk-a" in
// $FATHOM_TEST_TENANT_KEY. Skipped when those are unset.
import { strict as assert } from "node:assert";
import { randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import { Code, FathomClient } from "../../src/index.js";
import { expectError } from "../support/refusals.js";

const server = process.env.FATHOM_TEST_AUTH_SERVER;
const adminKey = process.env.FATHOM_TEST_ADMIN_KEY;
const tenantKey = process.env.FATHOM_TEST_TENANT_KEY;

describe("managing API keys", { skip: server && adminKey && tenantKey ? false : "FATHOM_TEST_AUTH_SERVER/keys unset" }, () => {
  it("creates a key that works at once, lists it without its secret, and revokes it", async () => {
    const admin = new FathomClient(server!, { apiKey: adminKey! });
    const description = `node key ${randomBytes(6).toString("hex")}`;
    try {
      const created = await admin.createKey("read", description, {
        tenant: "sdk-a",
        collections: ["docs"],
        expiresInMs: 3_600_000,
      });
      const { info } = created;
      assert.ok(created.key.startsWith(`fathom_${info.id}_`));
      assert.deepEqual(
        [info.role, info.tenant, info.collections, info.state, info.description],
        ["read", "sdk-a", ["docs"], "active", description],
      );
      const remainingMs = info.expireTime!.getTime() - Date.now();
      assert.ok(remainingMs > 50 * 60_000 && remainingMs <= 3_600_000, `${remainingMs}`);

      const reader = new FathomClient(server!, { apiKey: created.key });
      try {
        await reader.listCollections(); // works at once
        const listed = await admin.listKeys();
        assert.deepEqual(
          listed.find((key) => key.id === info.id),
          info,
        );
        assert.ok(!JSON.stringify(listed).includes(created.key.slice(-64)), "no secret is listed");

        const revoked = await admin.revokeKey(info.id);
        assert.equal(revoked.state, "revoked");
        assert.ok(revoked.revokeTime);
        const again = await admin.revokeKey(info.id);
        assert.deepEqual(again.revokeTime, revoked.revokeTime, "revoking twice changes nothing");
        await expectError(reader.listCollections(), Code.Unauthenticated);
      } finally {
        reader.close();
      }
      await expectError(admin.revokeKey("0123456789ab"), Code.NotFound);
    } finally {
      admin.close();
    }
  });

  it("names the bad field of a refused key, writes nothing, and refuses non-admin keys", async () => {
    const admin = new FathomClient(server!, { apiKey: adminKey! });
    const reader = new FathomClient(server!, { apiKey: tenantKey! });
    try {
      const before = (await admin.listKeys()).length;
      await expectError(admin.createKey("read", ""), Code.InvalidArgument, /^description$/);
      await expectError(admin.createKey("read", "bad tenant", { tenant: "" }), Code.InvalidArgument, /^tenant$/);
      await expectError(
        admin.createKey("read", "bad collection", { collections: ["Not A Name"] }),
        Code.InvalidArgument,
        /^collections\[0\]$/,
      );
      await expectError(
        admin.createKey("read", "expired", { expiresAt: new Date(Date.now() - 60_000) }),
        Code.InvalidArgument,
        /^expire_time$/,
      );
      await assert.rejects(() => admin.createKey("owner" as "read", "no such role"), TypeError);
      assert.equal((await admin.listKeys()).length, before, "nothing was written");
      await expectError(reader.createKey("read", "escalation"), Code.PermissionDenied);
      await expectError(reader.listKeys(), Code.PermissionDenied);
    } finally {
      reader.close();
      admin.close();
    }
  });
});
