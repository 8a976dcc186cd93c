// Unit tests of how a FathomError reads: the code once, in `message`, in
// String(error) and in console.log(error), as Python's str(error) has it.
import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import { inspect } from "node:util";

import { ConnectError } from "@connectrpc/connect";

import { Code, FathomError } from "../../src/errors.js";

/** How often `part` occurs in `text`. */
function occurrences(text: string, part: string): number {
  return text.split(part).length - 1;
}

describe("FathomError", () => {
  it("names a refusal's code once: in the message, in String() and in console.log", () => {
    const error = FathomError.from(new ConnectError('collection "nope" does not exist', Code.NotFound));
    assert.equal(error.name, "FathomError");
    assert.equal(error.message, 'NOT_FOUND: collection "nope" does not exist');
    assert.equal(String(error), 'FathomError: NOT_FOUND: collection "nope" does not exist');
    const logged = inspect(error);
    assert.equal(occurrences(logged.toLowerCase(), "not_found"), 1, logged);
    assert.equal(occurrences(logged, "does not exist"), 1, logged);
    assert.equal(error.code, Code.NotFound);
    assert.equal(error.rawMessage, 'collection "nope" does not exist');
  });

  it("prints the violations of a refusal once", () => {
    const violations = [{ field: "dimension", description: "must be 1..=16000" }];
    const error = new FathomError(Code.InvalidArgument, "invalid request", violations);
    assert.equal(error.message, "INVALID_ARGUMENT: invalid request\n  dimension: must be 1..=16000");
    const logged = inspect(error);
    assert.equal(occurrences(logged, "must be 1..=16000"), 1, logged);
    assert.equal(occurrences(logged, "INVALID_ARGUMENT"), 1, logged);
    assert.deepEqual(error.violations, violations);
  });

  it("does not repeat the violations the server's message already lists", () => {
    const violations = [
      { field: "name", description: "collection names use lower-case ASCII letters" },
      { field: "dimension", description: "dimension is 0; it must be 1..=16000" },
    ];
    const message = violations.map((v) => `${v.field}: ${v.description}`).join("; ");
    const error = new FathomError(Code.InvalidArgument, message, violations);
    assert.equal(error.message, `INVALID_ARGUMENT: ${message}`);
    assert.equal(occurrences(inspect(error), "dimension is 0"), 1, inspect(error));
  });

  it("keeps a transport failure's own error as its cause", () => {
    const reset = Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" });
    const error = FathomError.from(new ConnectError("read ECONNRESET", Code.Aborted, undefined, undefined, reset));
    assert.equal(error.cause, reset);
    assert.equal(error.message, "ABORTED: read ECONNRESET");
  });
});
