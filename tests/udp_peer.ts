/**
 * A UDP peer for tests: sends datagrams from 127.0.0.1 and collects the
 * ones that come back, with a timeout on each wait.
 *
 * @module
 */
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** One received datagram and where it came from. */
export interface Datagram {
  data: Uint8Array;
  from: Deno.NetAddr;
}

/** A UDP socket on 127.0.0.1 that queues what it receives. */
export class UdpPeer implements AsyncDisposable {
  readonly conn: Deno.DatagramConn;
  readonly received: Datagram[] = [];
  #wake: (() => void) | null = null;
  #closed = false;
  #loop: Promise<void>;

  constructor(hostname = "127.0.0.1", port = 0) {
    this.conn = Deno.listenDatagram({ transport: "udp", hostname, port });
    this.#loop = this.#receive();
  }

  /** The peer's own port. */
  get port(): number {
    return (this.conn.addr as Deno.NetAddr).port;
  }

  async #receive(): Promise<void> {
    const buf = new Uint8Array(65536);
    while (!this.#closed) {
      try {
        const [data, from] = await this.conn.receive(buf);
        this.received.push({ data: data.slice(), from: from as Deno.NetAddr });
        this.#wake?.();
      } catch {
        if (this.#closed) return;
      }
    }
  }

  /** Sends text or bytes to 127.0.0.1:port (or `hostname`). */
  async send(port: number, data: string | Uint8Array, hostname = "127.0.0.1"): Promise<void> {
    const bytes = typeof data === "string" ? encoder.encode(data) : data;
    await this.conn.send(bytes, { transport: "udp", hostname, port });
  }

  /** Takes the next received datagram, waiting up to `timeoutMs`. */
  next(timeoutMs = 5_000): Promise<Datagram> {
    if (this.received.length > 0) return Promise.resolve(this.received.shift()!);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#wake = null;
        reject(new Error(`Timed out after ${timeoutMs} ms: a datagram`));
      }, timeoutMs);
      this.#wake = () => {
        clearTimeout(timer);
        this.#wake = null;
        const next = this.received.shift();
        if (next) resolve(next);
        else reject(new Error("UdpPeer closed"));
      };
    });
  }

  /** Takes the next datagram as text. */
  async nextText(timeoutMs = 5_000): Promise<string> {
    return decoder.decode((await this.next(timeoutMs)).data);
  }

  /** Sends and returns the reply as text. */
  async ask(port: number, data: string | Uint8Array, timeoutMs = 5_000): Promise<string> {
    await this.send(port, data);
    return await this.nextText(timeoutMs);
  }

  /** Waits `ms`, then returns and forgets everything received so far. */
  async drain(ms: number): Promise<Datagram[]> {
    await new Promise((resolve) => setTimeout(resolve, ms));
    return this.received.splice(0);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.#closed = true;
    this.#wake?.();
    try {
      this.conn.close();
    } catch {
      // Already closed.
    }
    await this.#loop;
  }
}

/**
 * Sends `text` with `ncat -u` to 127.0.0.1:port and returns the first
 * reply as ncat printed it, then closes ncat's stdin and waits for it.
 */
export async function ncatUdpOnce(port: number, text: string): Promise<string> {
  const nc = new Deno.Command("ncat", {
    args: ["-u", "127.0.0.1", String(port)],
    stdin: "piped",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const w = nc.stdin.getWriter();
  await w.write(encoder.encode(text));
  const reader = nc.stdout.getReader();
  const { value } = await reader.read();
  reader.releaseLock();
  await w.close();
  await nc.output();
  return decoder.decode(value);
}
