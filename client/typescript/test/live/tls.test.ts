// TLS against real fathom servers that scripts/test.sh starts with
// --tls-cert/--tls-key (and one with --tls-client-ca): $FATHOM_TEST_TLS_SERVER,
// $FATHOM_TEST_MTLS_SERVER, with the CA and a client certificate in
// $FATHOM_TEST_TLS_CA, $FATHOM_TEST_TLS_CLIENT_CERT, $FATHOM_TEST_TLS_CLIENT_KEY.
// Skipped when those are unset.
import { strict as assert } from "node:assert";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { Code, FathomClient, FathomError } from "../../src/index.js";

const tlsServer = process.env.FATHOM_TEST_TLS_SERVER;
const mtlsServer = process.env.FATHOM_TEST_MTLS_SERVER;
const ca = process.env.FATHOM_TEST_TLS_CA;
const cert = process.env.FATHOM_TEST_TLS_CLIENT_CERT;
const key = process.env.FATHOM_TEST_TLS_CLIENT_KEY;

// A server that cannot be reached as configured (a failed handshake, a
// connection closed on a plain-text client) is UNAVAILABLE, as in the other clients.
function refusedByTransport(error: unknown): boolean {
  return error instanceof FathomError && error.code === Code.Unavailable;
}

describe("TLS", { skip: tlsServer && ca ? false : "FATHOM_TEST_TLS_SERVER/FATHOM_TEST_TLS_CA unset" }, () => {
  it("creates, upserts and searches over TLS with the CA as a file path", async () => {
    const client = new FathomClient(tlsServer!, { tls: { ca: ca! } });
    const name = `tls_${randomBytes(6).toString("hex")}`;
    try {
      const docs = await client.createCollection(name, 3);
      await docs.upsert([
        { id: "a", vector: [1, 0, 0], text: "red fox" },
        { id: "b", vector: [0, 1, 0], text: "blue sky" },
      ]);
      const hits = await docs.searchAll({ vector: [1, 0, 0], limit: 1 });
      assert.equal(hits[0]?.id, "a");
      await client.deleteCollection(name);
    } finally {
      client.close();
    }
  });

  it("connects with https:// and the CA as PEM bytes", async () => {
    const client = new FathomClient(`https://${tlsServer!}`, { tls: { ca: readFileSync(ca!) } });
    try {
      assert.ok(Array.isArray(await client.listCollections()));
    } finally {
      client.close();
    }
  });

  it("fails over plain text and without the CA", async () => {
    for (const options of [{}, { tls: true }]) {
      const client = new FathomClient(tlsServer!, { ...options, timeoutMs: 5000 });
      try {
        await assert.rejects(
          client.listCollections(),
          (error: unknown) => refusedByTransport(error) && (options.tls !== true || /not trusted.*tls\.ca/.test(String(error))),
        );
      } finally {
        client.close();
      }
    }
  });
});

describe("mutual TLS", { skip: mtlsServer && ca && cert && key ? false : "FATHOM_TEST_MTLS_SERVER and the client certificate unset" }, () => {
  it("serves a client certificate signed by the client CA", async () => {
    const client = new FathomClient(mtlsServer!, { tls: { ca: ca!, cert: cert!, key: key! } });
    try {
      assert.ok(Array.isArray(await client.listCollections()));
    } finally {
      client.close();
    }
  });

  it("refuses a client without a certificate", async () => {
    const client = new FathomClient(mtlsServer!, { tls: { ca: ca! }, timeoutMs: 5000 });
    try {
      await assert.rejects(
        client.listCollections(),
        (error: unknown) => refusedByTransport(error) && /requires a client certificate/.test(String(error)),
      );
    } finally {
      client.close();
    }
  });
});
