// Connection options shared by every client: the base URL, TLS and the API
// key. One place, so unary calls and streams carry the same metadata.
import { readFileSync } from "node:fs";
import type * as http2 from "node:http2";

/**
 * PEM: a `Buffer` or a string that starts with `-----BEGIN` is the PEM
 * itself; any other string is the path of a PEM file.
 */
export type PemSource = string | Buffer;

/** TLS settings of {@link ClientOptions.tls}. */
export interface TlsOptions {
  /** CA certificate(s) to trust for the server's certificate instead of the system's roots. */
  ca?: PemSource;
  /** Client certificate (chain), for servers that require one (mutual TLS); needs `key`. */
  cert?: PemSource;
  /** Private key of `cert`. */
  key?: PemSource;
}

/** What the API key comes from when none is given. */
export const API_KEY_ENV = "FATHOM_API_KEY";

/** @internal What a client opens its transport with. */
export interface Connection {
  baseUrl: string;
  headers: Record<string, string>;
  nodeOptions: http2.ClientSessionOptions | http2.SecureClientSessionOptions | undefined;
}

/** Turns `host:port` into a base URL; URLs pass unchanged. */
export function baseUrlOf(address: string): string {
  return /^https?:\/\//i.test(address) ? address : `http://${address}`;
}

/**
 * `authorization: Bearer <key>` for `apiKey`; `undefined` reads
 * `$FATHOM_API_KEY`, and an empty key (or variable) sends nothing.
 *
 * @throws TypeError the key has characters a gRPC header cannot carry (the message does not repeat the key).
 */
export function apiKeyHeaders(apiKey: string | undefined): Record<string, string> {
  const key = apiKey ?? process.env[API_KEY_ENV] ?? "";
  if (key === "") return {};
  if (!/^[\x20-\x7e]+$/.test(key)) {
    throw new TypeError("apiKey holds characters a gRPC header cannot carry (printable ASCII only)");
  }
  return { authorization: `Bearer ${key}` };
}

/** @internal Resolves a client's address, `apiKey`, `tls`, `headers` and `nodeOptions`. */
export function resolveConnection(
  address: string,
  options: {
    apiKey?: string;
    tls?: boolean | TlsOptions;
    headers?: Record<string, string>;
    nodeOptions?: http2.ClientSessionOptions | http2.SecureClientSessionOptions;
  },
): Connection {
  const headers = { ...apiKeyHeaders(options.apiKey), ...options.headers };
  const tls = options.tls;
  if (tls === undefined || tls === false) {
    return { baseUrl: baseUrlOf(address), headers, nodeOptions: options.nodeOptions };
  }
  if (/^http:\/\//i.test(address)) {
    throw new TypeError(`TLS options were given but the address ${JSON.stringify(address)} is http://; use https://`);
  }
  const baseUrl = /^https:\/\//i.test(address) ? address : `https://${address}`;
  const secure: http2.SecureClientSessionOptions = {};
  if (tls !== true) {
    if ((tls.cert === undefined) !== (tls.key === undefined)) {
      throw new TypeError("tls: cert and key go together (mutual TLS)");
    }
    if (tls.ca !== undefined) secure.ca = pem("ca", tls.ca);
    if (tls.cert !== undefined) secure.cert = pem("cert", tls.cert);
    if (tls.key !== undefined) secure.key = pem("key", tls.key);
  }
  return { baseUrl, headers, nodeOptions: { ...secure, ...options.nodeOptions } };
}

function pem(option: string, source: PemSource): string | Buffer {
  if (typeof source !== "string" || source.trimStart().startsWith("-----BEGIN")) return source;
  try {
    return readFileSync(source);
  } catch (error) {
    throw new Error(`tls.${option}: cannot read ${JSON.stringify(source)}: ${(error as Error).message}`);
  }
}
