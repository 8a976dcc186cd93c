// Unit tests of the retry table (docs/retries.md) as src/retry.ts implements
// it: which errors are retried, and the bounds of the pauses. The table
// against a real server is tested in test/live/retry.test.ts.
import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import { Code, FathomError } from "../../src/errors.js";
import { Backoff, backoffCeilingMs, DEFAULT_RETRY_POLICY, isRetryable, NO_RETRIES } from "../../src/retry.js";

const unavailable = new FathomError(Code.Unavailable, "the database is unavailable");

describe("isRetryable", () => {
  it("retries UNAVAILABLE, a broken connection and a busy refusal", () => {
    assert.equal(isRetryable(unavailable), true);
    assert.equal(isRetryable(new FathomError(Code.Aborted, "read ECONNRESET")), true);
    assert.equal(isRetryable(new FathomError(Code.ResourceExhausted, "the server is busy", [], undefined, true)), true);
  });

  it("does not retry a RESOURCE_EXHAUSTED without the busy mark", () => {
    assert.equal(isRetryable(new FathomError(Code.ResourceExhausted, "batch has 3 documents; the limit is 2")), false);
  });

  for (const code of [
    Code.DeadlineExceeded,
    Code.InvalidArgument,
    Code.NotFound,
    Code.AlreadyExists,
    Code.FailedPrecondition,
    Code.PermissionDenied,
    Code.Unauthenticated,
    Code.Canceled,
  ]) {
    it(`does not retry ${Code[code]}`, () => {
      assert.equal(isRetryable(new FathomError(code, "refused")), false);
    });
  }
});

describe("Backoff", () => {
  it("keeps pauses under their doubling ceiling and bounds the attempts", () => {
    const backoff = Backoff.call(DEFAULT_RETRY_POLICY);
    for (let retry = 1; retry < DEFAULT_RETRY_POLICY.maxAttempts; retry++) {
      const pause = backoff.nextPauseMs(unavailable);
      assert.ok(pause !== undefined && pause >= 0 && pause <= backoffCeilingMs(DEFAULT_RETRY_POLICY, retry));
    }
    assert.equal(backoff.nextPauseMs(unavailable), undefined);
    assert.equal(backoffCeilingMs(DEFAULT_RETRY_POLICY, 1), 100);
    assert.equal(backoffCeilingMs(DEFAULT_RETRY_POLICY, 30), DEFAULT_RETRY_POLICY.maxBackoffMs);
  });

  it("starts no retry past the budget, and progress starts it afresh", () => {
    let now = 0;
    const backoff = new Backoff({ ...DEFAULT_RETRY_POLICY, budgetMs: 1000, initialBackoffMs: 0 }, 10, () => now);
    assert.equal(backoff.nextPauseMs(unavailable), 0);
    now = 1500;
    assert.equal(backoff.nextPauseMs(unavailable), undefined);
    backoff.progressed();
    assert.equal(backoff.nextPauseMs(unavailable), 0);
  });

  it("never retries with NO_RETRIES", () => {
    assert.equal(Backoff.call(NO_RETRIES).nextPauseMs(unavailable), undefined);
  });
});
