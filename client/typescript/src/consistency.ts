/**
 * Read your writes across read replicas: the newest consistency token of a
 * client's writes, sent with its reads.
 *
 * A server with read replicas (`fathom serve --replica-url`) acknowledges
 * every write with a consistency token, and serves a read that carries one
 * from a replica that has replayed that write, or else from the primary. A
 * client keeps the newest token its writes were acknowledged with and puts
 * it in every read (Get, Count, Scroll, Search) that does not choose its
 * consistency itself, as a causally consistent session does.
 *
 * @module
 */

import { create } from "@bufbuild/protobuf";

import { type ReadConsistency, ReadConsistencySchema } from "./gen/fathom/v1/documents_pb.js";

/** The WAL position of a token as fathom writes it (`16/B374D848`). */
function positionOf(token: string): bigint | undefined {
  const match = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(token);
  if (match === null) return undefined;
  return (BigInt(`0x${match[1]}`) << 32n) | BigInt(`0x${match[2]}`);
}

/** The newest token seen, and the reads it goes into. */
export class ReadYourWrites {
  private newest: { token: string; position: bigint } | undefined;

  constructor(readonly enabled: boolean = true) {}

  /** The newest token a write was acknowledged with; `undefined` before any. */
  get token(): string | undefined {
    return this.newest?.token;
  }

  /**
   * Keeps `token` if it is newer than the one held (acknowledgements of
   * concurrent writes arrive in any order). A token this client cannot read
   * replaces only an empty session.
   */
  observe(token: string): void {
    if (token === "") return;
    const position = positionOf(token);
    if (this.newest === undefined || (position !== undefined && position > this.newest.position)) {
      this.newest = { token, position: position ?? -1n };
    }
  }

  /** Keeps the token of a write's response, if it carries one. */
  observeResponse(response: unknown): void {
    if (typeof response !== "object" || response === null) return;
    const token = (response as { consistencyToken?: unknown }).consistencyToken;
    if (typeof token === "string") this.observe(token);
  }

  /** Sends the newest token with `request`, a read, if it chose no consistency (and reading your writes is on). */
  fill(request: { consistency?: ReadConsistency | undefined }): void {
    if (!this.enabled || this.newest === undefined || request.consistency !== undefined) return;
    request.consistency = create(ReadConsistencySchema, {
      choice: { case: "afterToken", value: this.newest.token },
    });
  }
}
