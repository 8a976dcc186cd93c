// The retry table (docs/retries.md) against a real server and PostgreSQL: a
// pool-busy refusal is retried until the call succeeds, and permanent errors
// reach the caller after exactly one attempt. The tests start a `fathom
// serve` of their own ($FATHOM_TEST_BINARY on $FATHOM_TEST_SDK_DATABASE_URL)
// with one pooled connection, a batch limit of 2 documents and a metrics
// endpoint, whose grpc_server_handled_total counts the attempts; a psql
// session ($FATHOM_TEST_PSQL) holds a table lock. Skipped when those are unset.
import { strict as assert } from "node:assert";
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { createServer } from "node:net";
import { after, before, describe, it } from "node:test";
import { Code, FathomClient, FathomError } from "../../src/index.js";

const binary = process.env.FATHOM_TEST_BINARY;
const databaseUrl = process.env.FATHOM_TEST_SDK_DATABASE_URL;
const psql = process.env.FATHOM_TEST_PSQL;

/** Longest wait (ms) for something the tests wait on (the server, a lock, a refusal). */
const WAIT_MS = 30_000;

async function freePort(): Promise<number> {
  const probe = createServer();
  probe.listen(0, "127.0.0.1");
  await once(probe, "listening");
  const address = probe.address();
  probe.close();
  if (address === null || typeof address === "string") throw new Error("no port");
  return address.port;
}

async function eventually(check: () => Promise<boolean> | boolean, what: string): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`${what} within ${WAIT_MS / 1000} s`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** A `fathom serve` with one pooled connection and a metrics endpoint. */
class BusyServer {
  readonly process: ChildProcess;

  private constructor(
    readonly target: string,
    private readonly metricsUrl: string,
  ) {
    this.process = spawn(
      binary!,
      ["serve", "--max-connections", "1", "--max-batch-documents", "2", "--metrics-listen", new URL(metricsUrl).host],
      { env: { FATHOM_LISTEN: target, DATABASE_URL: databaseUrl!, RUST_LOG: "error" }, stdio: "ignore" },
    );
  }

  static async start(): Promise<BusyServer> {
    return new BusyServer(`127.0.0.1:${await freePort()}`, `http://127.0.0.1:${await freePort()}/metrics`);
  }

  /** How many `method` calls of the Documents service the server answered with `code`. */
  async handled(method: string, code: string): Promise<number> {
    const text = await (await fetch(this.metricsUrl)).text();
    let total = 0;
    for (const line of text.split("\n")) {
      if (
        line.startsWith("grpc_server_handled_total{") &&
        line.includes('grpc_service="fathom.v1.Documents"') &&
        line.includes(`grpc_method="${method}"`) &&
        line.includes(`grpc_code="${code}"`)
      ) {
        total += Number(line.slice(line.lastIndexOf(" ") + 1));
      }
    }
    return total;
  }

  /** The server's pooled sessions waiting on a lock. */
  sessionsWaitingOnALock(): number {
    const query =
      "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() " +
      "AND application_name = 'fathom' AND wait_event_type = 'Lock'";
    return Number(execFileSync(psql!, ["-X", "-tA", "-c", query, databaseUrl!], { encoding: "utf8" }).trim());
  }

  async stop(): Promise<void> {
    const exited = once(this.process, "exit");
    this.process.kill("SIGTERM");
    await exited;
  }
}

/** A psql session holding `LOCK TABLE … IN ACCESS EXCLUSIVE MODE` until released. */
class TableLock {
  private constructor(private readonly session: ChildProcess) {}

  static async take(table: string): Promise<TableLock> {
    const session = spawn(psql!, ["-X", "-q", "-tA", "-v", "ON_ERROR_STOP=1", databaseUrl!], {
      stdio: ["pipe", "pipe", "inherit"],
    });
    const locked = new Promise<void>((resolve, reject) => {
      session.stdout!.on("data", (chunk: Buffer) => {
        if (chunk.toString().includes("locked")) resolve();
      });
      session.on("exit", (code) => reject(new Error(`psql exited with ${code} before locking ${table}`)));
    });
    session.stdin!.write(`BEGIN;\nLOCK TABLE ${table} IN ACCESS EXCLUSIVE MODE;\nSELECT 'locked';\n`);
    await locked;
    return new TableLock(session);
  }

  /** Rolls the transaction back (once; later calls do nothing). */
  async release(): Promise<void> {
    if (this.session.stdin!.writableEnded) return;
    const exited = once(this.session, "exit");
    this.session.stdin!.end("ROLLBACK;\n");
    await exited;
  }
}

function uniqueName(prefix: string): string {
  return `${prefix}_${randomBytes(6).toString("hex")}`;
}

describe(
  "the retry table against a real server",
  { skip: binary && databaseUrl && psql ? false : "FATHOM_TEST_BINARY/SDK_DATABASE_URL/PSQL unset" },
  () => {
    let server: BusyServer;
    let client: FathomClient;

    before(async () => {
      server = await BusyServer.start();
      client = new FathomClient(server.target, { timeoutMs: 30_000 });
      await eventually(async () => {
        try {
          await client.listCollections();
          return true;
        } catch {
          return false;
        }
      }, "the busy server did not answer");
    });

    after(async () => {
      client.close();
      await server.stop();
    });

    it("retries a pool-busy refusal, and the retry succeeds", async () => {
      // One Count holds the server's only pooled connection behind a table
      // lock; a second waits for the pool and is refused as busy (with the
      // RetryInfo mark); once the server has counted that refusal the lock
      // goes, and the client's retry succeeds.
      const name = uniqueName("busy");
      const refusedBefore = await server.handled("Count", "ResourceExhausted");
      const okBefore = await server.handled("Count", "OK");
      const collection = await client.createCollection(name, 3);
      const lock = await TableLock.take(`fathom_data.${name}`);
      try {
        const holder = collection.count();
        await eventually(() => server.sessionsWaitingOnALock() === 1, "the first Count never held the pool");
        const retried = collection.count();
        await eventually(
          async () => (await server.handled("Count", "ResourceExhausted")) > refusedBefore,
          "the second Count was never refused as busy",
        );
        await lock.release();
        assert.equal(await holder, 0);
        assert.equal(await retried, 0, "the busy refusal was not retried");
      } finally {
        await lock.release();
      }
      await client.deleteCollection(name);
      assert.equal(await server.handled("Count", "ResourceExhausted"), refusedBefore + 1);
      assert.equal(await server.handled("Count", "OK"), okBefore + 2);
    });

    it("does not retry permanent errors", async () => {
      // INVALID_ARGUMENT, and a RESOURCE_EXHAUSTED without the busy mark (a
      // batch past the server's limit of 2), reach the caller after one attempt.
      const name = uniqueName("permanent");
      const invalidBefore = await server.handled("Count", "InvalidArgument");
      const tooLargeBefore = await server.handled("Upsert", "ResourceExhausted");
      const collection = await client.createCollection(name, 3);
      await assert.rejects(client.collection("Not A Name").count(), (error: unknown) => {
        assert.ok(error instanceof FathomError && error.code === Code.InvalidArgument, String(error));
        return true;
      });
      const documents = ["a", "b", "c"].map((id) => ({ id, vector: [1, 0, 0] }));
      await assert.rejects(collection.upsertBatch(documents), (error: unknown) => {
        assert.ok(error instanceof FathomError && error.code === Code.ResourceExhausted, String(error));
        assert.equal(error.busy, false);
        return true;
      });
      await client.deleteCollection(name);
      assert.equal(await server.handled("Count", "InvalidArgument"), invalidBefore + 1);
      assert.equal(await server.handled("Upsert", "ResourceExhausted"), tooLargeBefore + 1);
    });
  },
);
