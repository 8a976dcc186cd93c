/**
 * The retry policy: the TypeScript client's one implementation of the table
 * in `docs/retries.md` (the Rust and Python clients implement the same
 * table). Free of I/O: the client asks a {@link Backoff} how long to pause
 * after a failure, and does the pausing.
 *
 * @module
 */

import { Code, type FathomError } from "./errors.js";

/**
 * How failed calls are retried (the table: `docs/retries.md`).
 *
 * The pause before retry n (1-based) is drawn uniformly from zero to
 * `min(maxBackoffMs, initialBackoffMs * 2^(n-1))` (full jitter), and no
 * retry starts once `budgetMs` have passed since the first attempt (since the
 * last progress, for a stream), so a server that keeps failing is given up
 * on in bounded time.
 */
export interface RetryPolicy {
  /** Attempts of a call (unary calls, the start of a search), the first included; 1 means no retry. */
  readonly maxAttempts: number;
  /**
   * Attempts of a resumable upsert or a scroll without progress in between
   * (an acknowledged batch, a received document), the first included.
   */
  readonly maxStreamAttempts: number;
  /** Ceiling (ms) of the first pause; it doubles after each failure. */
  readonly initialBackoffMs: number;
  /** Highest ceiling (ms) of a pause. */
  readonly maxBackoffMs: number;
  /** Milliseconds after which no retry starts. */
  readonly budgetMs: number;
}

/** The table's defaults: 5 attempts (10 for streams), pauses from 100 ms doubling to 2 s, within 10 s. */
export const DEFAULT_RETRY_POLICY: RetryPolicy = Object.freeze({
  maxAttempts: 5,
  maxStreamAttempts: 10,
  initialBackoffMs: 100,
  maxBackoffMs: 2000,
  budgetMs: 10_000,
});

/** No retries: every call is tried once. */
export const NO_RETRIES: RetryPolicy = Object.freeze({ ...DEFAULT_RETRY_POLICY, maxAttempts: 1, maxStreamAttempts: 1 });

/** The ceiling (ms) of the pause before retry `retry` (1-based). */
export function backoffCeilingMs(policy: RetryPolicy, retry: number): number {
  return Math.min(policy.maxBackoffMs, policy.initialBackoffMs * 2 ** Math.min(Math.max(retry - 1, 0), 30));
}

const TRANSPORT_MARKERS =
  /h2 protocol error|rst_stream|nghttp2|transport|stream removed|socket|econnreset|epipe|connection reset|connection closed|broken pipe|goaway|session closed|premature close|stream closed|end of stream/i;

/**
 * Whether a call broke in transport (the connection or the server went away)
 * rather than being refused: UNAVAILABLE; ABORTED, which connect-node reports
 * for a reset connection (ECONNRESET) or a destroyed HTTP/2 stream (the
 * server never sends it); or UNKNOWN / INTERNAL reporting an HTTP/2 or socket
 * failure.
 */
export function isTransportFailure(code: Code, message: string): boolean {
  if (code === Code.Unavailable || code === Code.Aborted) return true;
  if (code !== Code.Unknown && code !== Code.Internal) return false;
  return TRANSPORT_MARKERS.test(message);
}

/**
 * Whether the table retries a call that failed with `error` (when the call is
 * one it retries): UNAVAILABLE or another transport failure, and
 * RESOURCE_EXHAUSTED when the server marked it busy (`error.busy`: a
 * `google.rpc.RetryInfo` detail). Nothing else: a RESOURCE_EXHAUSTED without
 * the mark (too large), DEADLINE_EXCEEDED and every refusal of the request
 * itself fail the same way again.
 */
export function isRetryable(error: FathomError): boolean {
  if (error.code === Code.ResourceExhausted) return error.busy;
  return isTransportFailure(error.code, error.rawMessage);
}

/** The retries of one call or stream: counts failures since the last progress and says how long to pause before the next attempt, if any. */
export class Backoff {
  private failures = 0;
  private since: number;

  constructor(
    private readonly policy: RetryPolicy,
    private readonly maxAttempts: number,
    private readonly clock: () => number = Date.now,
  ) {
    this.since = clock();
  }

  /** The retries of a call (unary, or the start of a search). */
  static call(policy: RetryPolicy): Backoff {
    return new Backoff(policy, policy.maxAttempts);
  }

  /** The reconnects of a resumable upsert or a scroll. */
  static stream(policy: RetryPolicy): Backoff {
    return new Backoff(policy, policy.maxStreamAttempts);
  }

  /** The last attempt got somewhere: failures count afresh from here. */
  progressed(): void {
    this.failures = 0;
    this.since = this.clock();
  }

  /** Milliseconds to pause before retrying after `error`, or undefined: give up (not retried, or the attempts or the budget are spent). */
  nextPauseMs(error: FathomError): number | undefined {
    if (!isRetryable(error) || this.failures + 1 >= Math.max(this.maxAttempts, 1)) return undefined;
    this.failures += 1;
    const pause = backoffCeilingMs(this.policy, this.failures) * Math.random();
    if (this.clock() - this.since + pause > this.policy.budgetMs) return undefined;
    return pause;
  }
}
