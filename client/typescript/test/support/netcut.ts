// A TCP forwarder to the live server whose connections can be cut, to break
// a stream for real (the server is the real one; only the wire is cut).
import * as net from "node:net";

export class CuttableLink {
  /** How many times `cut` was called. */
  cuts = 0;
  private readonly server: net.Server;
  private readonly open = new Set<net.Socket>();

  private constructor(server: net.Server) {
    this.server = server;
  }

  /** Starts forwarding 127.0.0.1:<random port> to `upstream` (`host:port`). */
  static async start(upstream: string): Promise<CuttableLink> {
    const separator = upstream.lastIndexOf(":");
    const host = upstream.slice(0, separator);
    const port = Number(upstream.slice(separator + 1));
    let link: CuttableLink | undefined;
    const server = net.createServer((downstream) => {
      const upstreamSocket = net.connect(port, host);
      for (const socket of [downstream, upstreamSocket]) {
        link!.open.add(socket);
        socket.on("close", () => link!.open.delete(socket));
        socket.on("error", () => undefined);
      }
      downstream.pipe(upstreamSocket);
      upstreamSocket.pipe(downstream);
      downstream.on("close", () => upstreamSocket.destroy());
      upstreamSocket.on("close", () => downstream.destroy());
    });
    link = new CuttableLink(server);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return link;
  }

  /** `host:port` to connect to. */
  get target(): string {
    const address = this.server.address() as net.AddressInfo;
    return `127.0.0.1:${address.port}`;
  }

  /** Drops every open connection; new ones are still forwarded. */
  cut(): void {
    this.cuts += 1;
    this.drop();
  }

  /** Stops listening and drops every connection. */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.drop();
    await closed;
  }

  private drop(): void {
    for (const socket of this.open) socket.destroy();
    this.open.clear();
  }
}
