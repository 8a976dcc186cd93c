// A refusal a test expects: the call fails with a FathomError of this code
// and, if asked, a violation whose field matches.
import { strict as assert } from "node:assert";
import { type Code, FathomError } from "../../src/index.js";

/** Awaits `promise`, asserts it fails with `code` (and a violation on `violationField`), and returns the error. */
export async function expectError(promise: Promise<unknown>, code: Code, violationField?: RegExp): Promise<FathomError> {
  let caught: unknown;
  try {
    await promise;
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof FathomError, `expected a FathomError, got ${String(caught)}`);
  assert.equal(caught.codeName, new FathomError(code, "").codeName, caught.message);
  if (violationField) {
    assert.ok(caught.violations.some((v) => violationField.test(v.field)), `no violation on ${violationField}: ${caught.message}`);
  }
  return caught;
}
