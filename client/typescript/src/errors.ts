/**
 * Errors raised by the Fathom client.
 *
 * Every failed RPC surfaces as a {@link FathomError} carrying the gRPC status
 * code, the server's message and, when the server sent them, the field
 * violations of a `google.rpc.BadRequest` detail (which the server sends in
 * the `grpc-status-details-bin` trailer), and whether the server refused
 * because it was busy (a `google.rpc.RetryInfo` detail; see `docs/retries.md`).
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
   * @param busy Whether the server refused because it was busy
   *   (RESOURCE_EXHAUSTED with a `google.rpc.RetryInfo` detail: its database
   *   pool or its request limit); such a refusal did nothing, and the client
   *   retries it (`docs/retries.md`).
   */
  constructor(
    readonly code: Code,
    readonly rawMessage: string,
    readonly violations: readonly FieldViolation[] = [],
    cause?: unknown,
    readonly busy: boolean = false,
  ) {
    super(renderMessage(code, rawMessage, violations), cause === undefined ? undefined : { cause });
    // `message` already says the code, the server's message and the
    // violations; as properties they stay readable but not enumerable, so
    // that console.log(error) says each once, as Python's str(error) does.
    for (const key of ["code", "rawMessage", "violations", "busy"]) {
      Object.defineProperty(this, key, { enumerable: false });
    }
  }

  /** The code's name, such as `"NOT_FOUND"`. */
  get codeName(): string {
    return codeName(this.code);
  }

  /**
   * Converts any error thrown by a Connect call into a {@link FathomError}.
   * Its `cause` is what lies under Connect's error (the transport's error,
   * or whatever else was thrown), none for a refusal by the server: Connect's
   * error itself would only repeat the code and the message.
   */
  static from(error: unknown): FathomError {
    if (error instanceof FathomError) return error;
    const connectError = ConnectError.from(error);
    return new FathomError(
      connectError.code,
      connectError.rawMessage,
      violationsOf(connectError),
      connectError.cause,
      connectError.code === Code.ResourceExhausted && hasRetryInfo(connectError),
    );
  }
}

/**
 * An upsert (`Collection.upsert`) failed; says how far it got.
 *
 * Every error an upsert throws, other than bad arguments refused before
 * anything is sent, is an `UpsertError` (or a subclass), so a caller can
 * always print true figures. What is committed under a stream id is always a
 * prefix of the input: run the upsert again with the same `streamId` (after
 * fixing the cause) and it continues at `committedDocuments`.
 */
export class UpsertError extends FathomError {
  override name = "UpsertError";
  /**
   * Documents of the input committed under the stream id, as last known (the
   * server tells it with every acknowledgement and on every reopen). For an
   * upsert without a `streamId`: the documents written by this call.
   */
  committedDocuments = 0;
  /** Documents this call wrote (as `UpsertSummary.documentsWritten`). */
  documentsWritten = 0;
  /** Documents not sent because an earlier run had committed them. */
  skippedDocuments = 0;
  /**
   * Documents sent and not acknowledged when the upsert gave up (the
   * connection broke for good): they may or may not be committed, so
   * `committedDocuments` is a lower bound. 0 when the figures are exact
   * (after a refusal, an input error or a resume mismatch, every batch sent
   * was acknowledged first).
   */
  inFlightDocuments = 0;

  constructor(code: Code, rawMessage: string, violations: readonly FieldViolation[] = [], cause?: unknown) {
    super(code, rawMessage, violations, cause);
  }

  /** The message with the figures, filled in when the upsert ends. */
  override toString(): string {
    const uncertain = this.inFlightDocuments > 0 ? `, ${this.inFlightDocuments} more in flight may be` : "";
    return `${this.name}: ${this.message}\n  (${documents(this.committedDocuments)} of the input committed${uncertain}, ${this.documentsWritten} written by this call)`;
  }
}

/**
 * A batch of an upsert stream was refused; nothing of it was written.
 *
 * The upsert stops sending at the first refused batch and waits for the
 * acknowledgements of the batches already sent, so the figures are exact.
 * Violation fields index into the batch (`documents[3].vector`): add
 * `batchOffset` to get the position in the input.
 *
 * With a `streamId`, the server refuses every batch after a refused one
 * (documents would be missing in between), so what is committed stays a
 * prefix of the input: `committedDocuments` is where it ends (normally
 * `batchOffset`). Fix the data and run the upsert again with the same stream
 * id; it continues from there.
 */
export class UpsertRejectedError extends UpsertError {
  override name = "UpsertRejectedError";

  constructor(
    code: Code,
    rawMessage: string,
    violations: readonly FieldViolation[],
    /** The refused batch's sequence number within the call. */
    readonly sequence: bigint,
    /** Input position of the refused batch's first document. */
    readonly batchOffset: number,
    /** Number of documents in the refused batch. */
    readonly batchDocuments: number,
  ) {
    super(code, rawMessage, violations);
  }
}

/**
 * The input is not the one committed under this stream id: the server has
 * documents committed under it, but the first that many documents of this
 * input have other ids (their digest differs from the server's `idsDigest`),
 * or the input is shorter. Nothing is sent. A stream id belongs to one input:
 * use a new stream id for other data. The code is FAILED_PRECONDITION; it is
 * never retried.
 */
export class ResumeMismatchError extends UpsertError {
  override name = "ResumeMismatchError";

  constructor(
    rawMessage: string,
    /** The stream id. */
    readonly streamId: string,
  ) {
    super(Code.FailedPrecondition, rawMessage);
  }
}

/**
 * Reading the input of an upsert failed (the iterable threw, or a document
 * could not be converted); the original error is `cause`. The batch being
 * built was not sent, and the batches sent before were acknowledged before
 * this was thrown, so `committedDocuments` is exact. The code is
 * INVALID_ARGUMENT (a client-side verdict; the server refused nothing).
 */
export class UpsertInputError extends UpsertError {
  override name = "UpsertInputError";

  constructor(
    rawMessage: string,
    /** Input position of the document that could not be read. */
    readonly position: number,
    cause: unknown,
  ) {
    super(Code.InvalidArgument, rawMessage, [], cause);
  }
}

/** Node's codes for a server certificate it could not verify. */
const UNTRUSTED_CERTIFICATE = new Set([
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "CERT_UNTRUSTED",
  "CERT_SIGNATURE_FAILURE",
]);

/**
 * @internal What went wrong, if `error` (or one of its causes) is a failed
 * TLS handshake: an untrusted, expired or misnamed server certificate, a
 * missing client certificate, or any other OpenSSL refusal. Node reports
 * these as plain errors that Connect maps to INTERNAL; to a caller they are
 * a server that cannot be reached as configured, UNAVAILABLE, as the Rust
 * and Python clients report them.
 */
export function tlsHandshakeFailure(error: unknown): string | undefined {
  for (let cause = error, depth = 0; cause instanceof Error && depth < 10; cause = cause.cause, depth++) {
    const code = (cause as { code?: unknown }).code;
    if (typeof code !== "string") continue;
    const reason = openSslReason(cause.message);
    if (UNTRUSTED_CERTIFICATE.has(code)) {
      return `TLS handshake failed: the server's certificate is not trusted (${reason}); give the CA that signed it as tls.ca`;
    }
    if (code === "CERT_HAS_EXPIRED" || code === "CERT_NOT_YET_VALID") {
      return `TLS handshake failed: the server's certificate is not valid now (${reason})`;
    }
    if (code === "ERR_TLS_CERT_ALTNAME_INVALID") {
      return `TLS handshake failed: the server's certificate is for another name (${reason}); connect by a name it lists`;
    }
    if (code === "ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED") {
      return "TLS handshake failed: the server requires a client certificate (mutual TLS); give one as tls.cert and tls.key";
    }
    if (code.startsWith("ERR_SSL_") || code.startsWith("ERR_TLS_") || code === "EPROTO") {
      return `TLS handshake failed: ${reason}`;
    }
  }
  return undefined;
}

/** The reason of an OpenSSL error line ("…:error:0A00045C:SSL routines:fn:reason:file:…"), else the message. */
function openSslReason(message: string): string {
  return /:error:[0-9A-Fa-f]+:[^:]*:[^:]*:([^:]+):/.exec(message)?.[1] ?? message.trim();
}

/** `"NOT_FOUND"` for `Code.NotFound`, and so on. */
export function codeName(code: Code): string {
  const name = Code[code] ?? `CODE_${code}`;
  return name.replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();
}

function renderMessage(code: Code, message: string, violations: readonly FieldViolation[]): string {
  // The server's message lists its violations already ("field: description; …"):
  // only a violation it does not name is added.
  const lines = violations
    .map((v) => `${v.field}: ${v.description}`)
    .filter((line) => !message.includes(line))
    .map((line) => `\n  ${line}`);
  return `${codeName(code)}: ${message}${lines.join("")}`;
}

/** "1 document", "2 documents". */
function documents(n: number): string {
  return n === 1 ? "1 document" : `${n} documents`;
}

const BAD_REQUEST = "google.rpc.BadRequest";
const RETRY_INFO = "google.rpc.RetryInfo";

/** Whether an error carries a `google.rpc.RetryInfo` detail (the server's mark of a busy refusal). */
function hasRetryInfo(error: ConnectError): boolean {
  return error.details.some((detail) => "type" in detail && detail.type === RETRY_INFO);
}

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
