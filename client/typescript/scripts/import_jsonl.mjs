#!/usr/bin/env node
// Imports a JSON Lines file into a Fathom collection through a resumable
// UpsertStream (the TypeScript SDK's `Collection.upsert` with a `streamId`).
//
//   node scripts/import_jsonl.mjs --server HOST:PORT --collection C --stream-id S --batch-size N FILE
//
// Each non-blank line is {"id": string, "vector": [number, ...], "text":
// string, "metadata": {...}} (text and metadata optional). The file is read
// lazily, chunk by chunk (with the stream's backpressure). The collection
// must exist.
//
// Prints one line, "committed N documents of the input (W written by this
// run, K skipped)", where N is what the server holds under the stream id, W
// what this run wrote and K what an earlier run had committed. Exits 0 only
// if the whole input is committed; otherwise prints the error on stderr (a
// bad line is named, and nothing of its batch is sent) and exits 1. Run the
// same command again (with any batch size, after fixing a bad line) to
// continue where it stopped; other data under the same stream id is refused.
//
// It runs on the built SDK (dist/): `client/typescript/test.sh --unit`, or
// `npm ci && npm run build` in client/typescript, builds it.
import { createReadStream } from "node:fs";
import { parseArgs } from "node:util";
import { FathomClient, UpsertError } from "../dist/index.js";

/** About 28 s of reconnect attempts without progress: a server or database restart fits in. */
const RECONNECT_DELAYS_MS = [200, 500, 1000, 2000, 4000, 4000, 4000, 4000, 4000, 4000];

const USAGE = "usage: import_jsonl --server HOST:PORT --collection C --stream-id S [--batch-size N] FILE";

/** The documents of a JSON Lines file, read lazily; a bad line throws naming it. */
async function* records(path) {
  let number = 0;
  let rest = "";
  function parse(line) {
    number += 1;
    if (line.trim() === "") return undefined;
    let record;
    try {
      record = JSON.parse(line);
    } catch (error) {
      throw new Error(`${path}:${number}: not JSON: ${error.message}`);
    }
    if (record === null || typeof record !== "object" || Array.isArray(record) || !("id" in record) || !("vector" in record)) {
      throw new Error(`${path}:${number}: expected an object with "id" and "vector"`);
    }
    return record;
  }
  for await (const chunk of createReadStream(path, { encoding: "utf8" })) {
    const lines = (rest + chunk).split("\n");
    rest = lines.pop();
    for (const line of lines) {
      const record = parse(line);
      if (record !== undefined) yield record;
    }
  }
  const record = parse(rest);
  if (record !== undefined) yield record;
}

const figures = (committed, written, skipped) =>
  `committed ${committed} documents of the input (${written} written by this run, ${skipped} skipped)`;

async function main() {
  let options;
  try {
    options = parseArgs({
      options: {
        server: { type: "string" },
        collection: { type: "string" },
        "stream-id": { type: "string" },
        "batch-size": { type: "string", default: "500" },
      },
      allowPositionals: true,
    });
  } catch (error) {
    console.error(`import_jsonl: ${error.message}\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = options;
  const batchSize = Number(values["batch-size"]);
  if (!values.server || !values.collection || !values["stream-id"] || positionals.length !== 1 || !(batchSize >= 1)) {
    console.error(USAGE);
    return 2;
  }
  const [file] = positionals;

  let read = 0;
  async function* counted() {
    for await (const record of records(file)) {
      read += 1;
      yield record;
    }
  }

  const client = new FathomClient(values.server, { reconnectDelaysMs: RECONNECT_DELAYS_MS });
  try {
    const summary = await client
      .collection(values.collection)
      .upsert(counted(), { batchSize, streamId: values["stream-id"] });
    console.log(figures(summary.committedDocuments, summary.documentsWritten, summary.skippedDocuments));
    if (summary.committedDocuments !== read) {
      console.error(`import_jsonl: the input has ${read} documents, not all committed`);
      return 1;
    }
    return 0;
  } catch (error) {
    if (!(error instanceof UpsertError)) throw error;
    console.error(`import_jsonl: ${error.message}`);
    if (error.inFlightDocuments > 0) {
      console.error(
        `import_jsonl: ${error.inFlightDocuments} more documents were in flight and may be committed too; run again to continue`,
      );
    }
    console.log(figures(error.committedDocuments, error.documentsWritten, error.skippedDocuments));
    return 1;
  } finally {
    client.close();
  }
}

process.exitCode = await main();
