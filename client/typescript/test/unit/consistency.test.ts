// Unit tests of read-your-writes (src/consistency.ts): the newest token
// kept, and the reads it goes into. The tokens against a real server are in
// test/live/consistency.test.ts; the routing to replicas is tested in Rust.
import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { ReadYourWrites } from "../../src/consistency.js";
import { GetRequestSchema, type ReadConsistency, ReadConsistencySchema } from "../../src/gen/fathom/v1/documents_pb.js";

describe("ReadYourWrites", () => {
  it("keeps the newest token whatever order acknowledgements come in", () => {
    const session = new ReadYourWrites();
    assert.equal(session.token, undefined);
    for (const token of ["0/2000", "1/0", "0/FFFFFFFF", ""]) session.observe(token);
    assert.equal(session.token, "1/0");
    session.observeResponse({ consistencyToken: "1/10", documentsWritten: 1 });
    session.observeResponse({ collections: [] });
    assert.equal(session.token, "1/10");
  });

  it("puts the token in reads that choose no consistency, and leaves the others alone", () => {
    const session = new ReadYourWrites();
    const get = create(GetRequestSchema, { collection: "docs", ids: ["a"] });
    const sent = (): ReadConsistency | undefined => get.consistency;
    session.fill(get);
    assert.equal(sent(), undefined, "no write yet: eventual");
    session.observe("0/16B3748");
    session.fill(get);
    assert.deepEqual(sent()?.choice, { case: "afterToken", value: "0/16B3748" });
    const strong = create(GetRequestSchema, {
      collection: "docs",
      consistency: create(ReadConsistencySchema, { choice: { case: "strong", value: true } }),
    });
    session.fill(strong);
    assert.equal(strong.consistency?.choice.case, "strong");
  });

  it("sends nothing when reading your writes is off", () => {
    const session = new ReadYourWrites(false);
    session.observe("0/1");
    const get = create(GetRequestSchema, { collection: "docs" });
    session.fill(get);
    assert.equal(get.consistency, undefined);
    assert.equal(session.token, "0/1");
  });
});
