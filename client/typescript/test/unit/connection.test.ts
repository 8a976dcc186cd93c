// Connection options: the API key header and TLS settings, checked before
// anything is sent; and the key on the wire, seen by a tiny recording
// HTTP/2 server (the one stand-in in these tests: fathom does not check keys
// yet, so only a recorder can show the header arrives on every kind of call).
import { strict as assert } from "node:assert";
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { Code, ConnectError } from "@connectrpc/connect";
import { apiKeyHeaders, FathomClient } from "../../src/index.js";
import { resolveConnection } from "../../src/connection.js";
import { tlsHandshakeFailure } from "../../src/errors.js";

describe("connection options", () => {
  it("sends the API key as a bearer token and reads FATHOM_API_KEY by default", () => {
    assert.deepEqual(apiKeyHeaders("k-1"), { authorization: "Bearer k-1" });
    const saved = process.env.FATHOM_API_KEY;
    try {
      process.env.FATHOM_API_KEY = "from-env";
      assert.deepEqual(apiKeyHeaders(undefined), { authorization: "Bearer from-env" });
      assert.deepEqual(apiKeyHeaders(""), {});
    } finally {
      if (saved === undefined) delete process.env.FATHOM_API_KEY;
      else process.env.FATHOM_API_KEY = saved;
    }
  });

  it("refuses a key a header cannot carry without repeating it", () => {
    assert.throws(
      () => apiKeyHeaders("secret\nline"),
      (error: Error) => error instanceof TypeError && error.message.includes("apiKey") && !error.message.includes("secret"),
    );
  });

  it("turns host:port into https with tls, and refuses tls with http://", () => {
    assert.equal(resolveConnection("127.0.0.1:1", { tls: true }).baseUrl, "https://127.0.0.1:1");
    assert.equal(resolveConnection("127.0.0.1:1", {}).baseUrl, "http://127.0.0.1:1");
    assert.throws(() => resolveConnection("http://127.0.0.1:1", { tls: true }), /https:\/\//);
    assert.throws(() => resolveConnection("127.0.0.1:1", { tls: { cert: "-----BEGIN CERTIFICATE-----" } }), /cert and key/);
    assert.throws(() => resolveConnection("127.0.0.1:1", { tls: { ca: "/nonexistent/ca.pem" } }), /\/nonexistent\/ca\.pem/);
  });
});

describe("the API key on the wire", () => {
  const seen: { path: string; authorization: string | undefined }[] = [];
  let server: http2.Http2Server;
  let address = "";

  before(async () => {
    server = http2.createServer();
    server.on("stream", (stream, headers) => {
      seen.push({ path: String(headers[":path"]), authorization: headers.authorization as string | undefined });
      stream.respond({ ":status": 200, "content-type": "application/grpc", "grpc-status": "12" }, { endStream: true });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => server.close());

  it("is sent on unary, server-streaming and client-streaming calls", async () => {
    const client = new FathomClient(address, { apiKey: "test-key-123" });
    try {
      await assert.rejects(client.listCollections());
      await assert.rejects(async () => {
        for await (const _ of client.collection("docs").search({ vector: [1] })) void _;
      });
      await assert.rejects(client.collection("docs").upsert([{ id: "a", vector: [1] }]));
    } finally {
      client.close();
    }
    for (const path of ["/fathom.v1.Collections/ListCollections", "/fathom.v1.Search/Search", "/fathom.v1.Documents/UpsertStream"]) {
      const call = seen.find((s) => s.path === path);
      assert.equal(call?.authorization, "Bearer test-key-123", `${path} in ${JSON.stringify(seen)}`);
    }
  });
});

describe("TLS handshake failures", () => {
  const nodeError = (code: string, message: string) => Object.assign(new Error(message), { code });
  const wrapped = (cause: Error) => new ConnectError(cause.message, Code.Internal, undefined, undefined, cause);

  it("names the fix for an untrusted server certificate and a missing client certificate", () => {
    const untrusted = tlsHandshakeFailure(
      wrapped(nodeError("UNABLE_TO_VERIFY_LEAF_SIGNATURE", "unable to verify the first certificate")),
    );
    assert.match(untrusted ?? "", /not trusted \(unable to verify the first certificate\).*tls\.ca/);
    const required = tlsHandshakeFailure(
      wrapped(
        nodeError(
          "ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED",
          "80:error:0A00045C:SSL routines:ssl3_read_bytes:tlsv13 alert certificate required:rec_layer_s3.c:1601:SSL alert number 116\n",
        ),
      ),
    );
    assert.match(required ?? "", /requires a client certificate.*tls\.cert and tls\.key/);
  });

  it("gives OpenSSL's reason for any other refusal and nothing for other errors", () => {
    const other = tlsHandshakeFailure(
      nodeError("ERR_SSL_WRONG_VERSION_NUMBER", "80:error:0A00010B:SSL routines:ssl3_get_record:wrong version number:ssl.c:355:\n"),
    );
    assert.equal(other, "TLS handshake failed: wrong version number");
    assert.equal(tlsHandshakeFailure(nodeError("ECONNREFUSED", "connect ECONNREFUSED 127.0.0.1:1")), undefined);
    assert.equal(tlsHandshakeFailure(new ConnectError("not found", Code.NotFound)), undefined);
    assert.equal(tlsHandshakeFailure("a string"), undefined);
  });
});
