/**
 * Errors raised by the Fathom client.
 *
 * Every failed RPC surfaces as a {@link FathomError} carrying the gRPC status
 * code, the server's message and, when the server sent them, the field
 * violations of a `google.rpc.BadRequest` detail (which the server sends in
 * the `grpc-status-details-bin` trailer).
 */

import { Code, ConnectError } from "@connectrpc/connect";
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";

export { Code };

/** One invalid field of a request, as reported by the server. */
export interface FieldViolation {
  /** Path to the field, such as `"documents[3].vector"`. */
  readonly field: string;
  /** What is wrong and what the limit is. */
  readonly description: string;
}

/** An error returned by the Fathom server (or the transport). */
export class FathomError extends Error {
  override name = "FathomError";

  /**
   * @param code The gRPC status code (Connect's `Code` has the gRPC numbering).
   * @param rawMessage The server's message.
   * @param violations Field violations sent by the server.
   * @param cause The underlying error, if any.
   */
  constructor(
    readonly code: Code,
    readonly rawMessage: string,
    readonly violations: readonly FieldViolation[] = [],
    cause?: unknown,
  ) {
    super(renderMessage(code, rawMessage, violations), cause === undefined ? undefined : { cause });
  }

  /** The code's name, such as `"NOT_FOUND"`. */
  get codeName(): string {
    return codeName(this.code);
  }

  /** Converts any error thrown by a Connect call into a {@link FathomError}. */
  static from(error: unknown): FathomError {
    if (error instanceof FathomError) return error;
    const connectError = ConnectError.from(error);
    return new FathomError(
      connectError.code,
      connectError.rawMessage,
      violationsOf(connectError),
      error,
    );
  }
}

/**
 * A batch of an upsert stream was rejected; nothing of it was written.
 *
 * The upsert stops sending at the first rejected batch. Every other batch
 * already sent is still acknowledged and stored, so `documentsWritten` is
 * exact. Violation fields index into the batch (`documents[3].vector`): add
 * `batchOffset` to get the position in the input.
 *
 * With a `streamId`, do not simply run the same upsert again: batches sent
 * after the rejected one may be committed, and a resumed upsert skips every
 * batch up to the last committed one, the rejected one included. Write the
 * corrected documents under a new stream id (or with `upsertBatch`).
 */
export class UpsertRejectedError extends FathomError {
  override name = "UpsertRejectedError";

  constructor(
    code: Code,
    rawMessage: string,
    violations: readonly FieldViolation[],
    /** The rejected batch's sequence number. */
    readonly sequence: bigint,
    /** Input position of the rejected batch's first document. */
    readonly batchOffset: number,
    /** Documents written by the other batches of this call. */
    public documentsWritten: number,
  ) {
    super(code, rawMessage, violations);
  }
}

/** `"NOT_FOUND"` for `Code.NotFound`, and so on. */
export function codeName(code: Code): string {
  const name = Code[code] ?? `CODE_${code}`;
  return name.replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();
}

function renderMessage(code: Code, message: string, violations: readonly FieldViolation[]): string {
  const lines = violations.map((v) => `\n  ${v.field}: ${v.description}`);
  return `${codeName(code)}: ${message}${lines.join("")}`;
}

const BAD_REQUEST = "google.rpc.BadRequest";

/** Field violations of every `google.rpc.BadRequest` detail of an error. */
export function violationsOf(error: ConnectError): FieldViolation[] {
  const found: FieldViolation[] = [];
  for (const detail of error.details) {
    if ("type" in detail && detail.type === BAD_REQUEST) {
      found.push(...decodeBadRequest(detail.value));
    }
  }
  return found;
}

/**
 * Decodes a `google.rpc.BadRequest` (field 1: repeated FieldViolation, whose
 * field 1 is `field` and field 2 `description`). Done by hand to avoid
 * generating all of googleapis for two strings.
 */
export function decodeBadRequest(bytes: Uint8Array): FieldViolation[] {
  const violations: FieldViolation[] = [];
  const reader = new BinaryReader(bytes);
  while (reader.pos < reader.len) {
    const [fieldNo, wireType] = reader.tag();
    if (fieldNo === 1 && wireType === WireType.LengthDelimited) {
      violations.push(decodeFieldViolation(reader.bytes()));
    } else {
      reader.skip(wireType);
    }
  }
  return violations;
}

function decodeFieldViolation(bytes: Uint8Array): FieldViolation {
  let field = "";
  let description = "";
  const reader = new BinaryReader(bytes);
  while (reader.pos < reader.len) {
    const [fieldNo, wireType] = reader.tag();
    if (fieldNo === 1 && wireType === WireType.LengthDelimited) field = reader.string();
    else if (fieldNo === 2 && wireType === WireType.LengthDelimited) description = reader.string();
    else reader.skip(wireType);
  }
  return { field, description };
}
