/**
 * TypeScript client for Fathom, the gRPC vector-search server.
 *
 * ```ts
 * import { FathomClient } from "@fathom/client";
 *
 * const client = new FathomClient("127.0.0.1:50051");
 * const docs = await client.createCollection("quickstart", 3);
 * await docs.upsert([{ id: "a", vector: [1, 0, 0], text: "red fox", metadata: { lang: "en" } }]);
 * for await (const hit of docs.search({ vector: [1, 0, 0], text: "fox", filter: { lang: "en" } })) {
 *   console.log(hit.id, hit.score, hit.vectorRank, hit.textRank);
 * }
 * client.close();
 * ```
 *
 * The generated messages and service descriptors are exported under `v1`.
 *
 * @module
 */

export { baseUrlOf, type ClientOptions, Collection, DEFAULT_ADDRESS, FathomClient } from "./client.js";
export { API_KEY_ENV, apiKeyHeaders, type PemSource, type TlsOptions } from "./connection.js";
export {
  Code,
  codeName,
  FathomError,
  type FieldViolation,
  ResumeMismatchError,
  UpsertError,
  UpsertInputError,
  UpsertRejectedError,
} from "./errors.js";
export {
  type FieldOperators,
  FilterError,
  type FilterSpec,
  type IdOperand,
  rfc3339,
  type ScalarValue,
  toFilter,
} from "./filters.js";
export { DEFAULT_RETRY_POLICY, NO_RETRIES, type RetryPolicy } from "./retry.js";
export type * from "./types.js";
export * as v1 from "./v1.js";
