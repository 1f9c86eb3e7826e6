/**
 * All cores of one machine: `--workers N` runs N copies of a server in one
 * process, each on its own thread (a Web Worker running the same script),
 * all listening on one port with `reusePort` (Linux `SO_REUSEPORT`, which
 * spreads new connections across them). The main thread binds first, so
 * `--port 0` works, prints the one ready line once every worker listens,
 * and on SIGINT/SIGTERM tells each worker to drain and waits for all.
 *
 * @module
 */
import { type Address, formatAddr } from "./addr.ts";
import { UsageError } from "../cli/cli.ts";
import { deadline } from "../io/deadline.ts";
import { whenAborted } from "../cli/signals.ts";

/** The `--workers` option of every server that has it, to spread into a command spec. */
export const WORKERS_OPTION = {
  workers: {
    type: "string",
    arg: "N",
    default: "1",
    description: "threads sharing the port (auto = one per CPU)",
  },
} as const;

/** Most workers accepted by `--workers`. */
export const MAX_WORKERS = 64;

/** Whether this code runs in a Web Worker rather than the main thread. */
export function isWorkerThread(): boolean {
  return typeof (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope !== "undefined";
}

/** Parses `--workers`: a count 1-64, or `auto` for the number of CPUs. */
export function parseWorkers(text: string): number {
  if (text === "auto") return Math.max(1, Math.min(MAX_WORKERS, navigator.hardwareConcurrency));
  const n = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!(n >= 1 && n <= MAX_WORKERS)) {
    throw new UsageError(`Invalid --workers "${text}": must be 1-${MAX_WORKERS} or auto`);
  }
  return n;
}

/** A counter shared by every worker of a server, e.g. the book's client number. */
export class SharedCounter {
  readonly buffer: SharedArrayBuffer;
  #cells: Int32Array;
  constructor(buffer: SharedArrayBuffer = new SharedArrayBuffer(4)) {
    this.buffer = buffer;
    this.#cells = new Int32Array(buffer);
  }
  /** Returns the current value and adds one, atomically across threads. */
  next(): number {
    return Atomics.add(this.#cells, 0, 1);
  }
  /** The current value. */
  get value(): number {
    return Atomics.load(this.#cells, 0);
  }
}

/**
 * The process's bound on open connections, shared by every worker and
 * every port of a server: a connection takes a place with
 * {@link tryAcquire} and gives it back with {@link release}.
 */
export class ConnectionLimit {
  readonly buffer: SharedArrayBuffer;
  /** Most connections open at once. */
  readonly max: number;
  #cells: Int32Array;
  constructor(max: number, buffer: SharedArrayBuffer = new SharedArrayBuffer(4)) {
    this.max = max;
    this.buffer = buffer;
    this.#cells = new Int32Array(buffer);
  }
  /** Takes a place if one is free, atomically across threads; false when all are taken. */
  tryAcquire(): boolean {
    for (let open = Atomics.load(this.#cells, 0); open < this.max;) {
      const seen = Atomics.compareExchange(this.#cells, 0, open, open + 1);
      if (seen === open) return true;
      open = seen;
    }
    return false;
  }
  /** Gives back a place taken by {@link tryAcquire}. */
  release(): void {
    Atomics.sub(this.#cells, 0, 1);
  }
  /** Connections open now, in every worker. */
  get open(): number {
    return Atomics.load(this.#cells, 0);
  }
}

/** What one worker is given: where to listen, and what it shares with the others. */
export interface WorkerSlot {
  /** 0 for the main thread, 1..count-1 for the workers. */
  id: number;
  /** How many workers serve the port. */
  count: number;
  /** Where to listen: the real port once the main thread has bound it. */
  address: Address;
  /** Whether to listen with `reusePort` (when count > 1). */
  reusePort: boolean;
  /** Shared by all workers of this server. */
  counter: SharedCounter;
  /** Shared by all workers: the live connections under `--max-conns`. */
  connections: SharedArrayBuffer;
  /** Aborted when this worker must drain and stop. */
  signal: AbortSignal;
}

/** What a worker's server must offer: the shape of `TcpServer` and `Deno.HttpServer` alike. */
export interface Served {
  readonly addr: Deno.Addr;
  readonly finished: Promise<void>;
}

/** Options for {@link serveWorkers}. */
export interface ServeWorkersOptions {
  /** How many threads serve the port. Default 1 (no workers). */
  count?: number;
  /** The script to run in each worker: pass `import.meta.url`. */
  moduleUrl: string | URL;
  /** Where to listen. */
  address: Address;
  /** Aborting it drains every worker. */
  signal: AbortSignal;
  /** Starts one server for a slot; called once per thread. */
  serve: (slot: WorkerSlot) => Promise<Served>;
  /** Called once every worker listens. Default prints `Listening on tcp://H:P`. */
  onListen?: (addr: Deno.Addr, count: number) => void;
  /** How long to wait for a worker to start listening. Default 30 s. */
  startTimeoutMs?: number;
}

type ToWorker =
  | {
    type: "init";
    id: number;
    count: number;
    address: Address;
    counter: SharedArrayBuffer;
    connections: SharedArrayBuffer;
  }
  | { type: "stop" };
type FromWorker = { type: "ready" } | { type: "stopped" } | { type: "failed"; message: string };

function defaultOnListen(addr: Deno.Addr, count: number): void {
  console.log(`Listening on ${formatAddr(addr)}` + (count > 1 ? ` (${count} workers)` : ""));
}

/**
 * Serves `address` with `count` threads, or, when called inside a worker,
 * serves the slot the main thread sends. Resolves once every thread has
 * drained after `signal` aborts (in a worker: after the main thread's stop).
 */
export async function serveWorkers(options: ServeWorkersOptions): Promise<void> {
  if (isWorkerThread()) return await runAsWorker(options.serve);
  const count = options.count ?? 1;
  const counter = new SharedCounter();
  const connections = new SharedArrayBuffer(4);
  const local = new AbortController();
  options.signal.addEventListener("abort", () => local.abort(), { once: true });
  const first = await options.serve({
    id: 0,
    count,
    address: options.address,
    reusePort: count > 1,
    counter,
    connections,
    signal: local.signal,
  });
  const workers: WorkerHandle[] = [];
  try {
    const address: Address = first.addr.transport === "tcp"
      ? {
        transport: "tcp",
        hostname: options.address.transport === "tcp"
          ? options.address.hostname
          : first.addr.hostname,
        port: first.addr.port,
      }
      : options.address;
    for (let id = 1; id < count; id++) {
      workers.push(
        new WorkerHandle(options.moduleUrl, {
          type: "init",
          id,
          count,
          address,
          counter: counter.buffer,
          connections,
        }),
      );
    }
    const startMs = options.startTimeoutMs ?? 30_000;
    await deadline(
      Promise.all(workers.map((w) => w.ready)),
      startMs,
      `Timed out after ${startMs} ms waiting for the workers to start listening`,
    );
  } catch (error) {
    local.abort();
    for (const w of workers) w.terminate();
    await first.finished;
    throw error;
  }
  (options.onListen ?? defaultOnListen)(first.addr, count);
  // Stop on the signal, or when any thread's server stops by itself (the
  // book's STOP with --exit-on-stop): the others follow.
  await Promise.race([
    whenAborted(options.signal),
    first.finished,
    ...workers.map((w) => w.stopped),
  ]);
  local.abort();
  await Promise.all([first.finished, ...workers.map((w) => w.stop())]);
}

/** The main thread's side of one worker. */
class WorkerHandle {
  readonly ready: Promise<void>;
  /** Resolves once the worker's server has finished (asked to, or by itself). */
  readonly stopped: Promise<void>;
  #worker: Worker;
  #resolveStopped!: () => void;

  constructor(moduleUrl: string | URL, init: ToWorker) {
    this.#worker = new Worker(moduleUrl, { type: "module" });
    this.stopped = new Promise((resolve) => this.#resolveStopped = resolve);
    this.ready = new Promise((resolve, reject) => {
      this.#worker.onmessage = (event: MessageEvent<FromWorker>) => {
        const msg = event.data;
        if (msg.type === "ready") resolve();
        else if (msg.type === "failed") reject(new Error(msg.message));
        else if (msg.type === "stopped") this.#resolveStopped();
      };
      this.#worker.onerror = (event) => {
        event.preventDefault();
        reject(new Error(`Worker failed: ${event.message}`));
        this.#resolveStopped();
      };
    });
    this.ready.catch(() => {});
    this.#worker.postMessage(init);
  }

  /** Asks the worker to drain, waits for it, and ends its thread. */
  async stop(): Promise<void> {
    this.#worker.postMessage({ type: "stop" } satisfies ToWorker);
    await this.stopped;
    this.terminate();
  }

  terminate(): void {
    this.#worker.terminate();
  }
}

/** The worker's side: wait for a slot, serve it, drain on stop. */
async function runAsWorker(serve: (slot: WorkerSlot) => Promise<Served>): Promise<void> {
  const scope = globalThis as unknown as {
    onmessage: ((event: MessageEvent<ToWorker>) => void) | null;
    postMessage(msg: FromWorker): void;
  };
  const stop = new AbortController();
  const init = await new Promise<Extract<ToWorker, { type: "init" }>>((resolve) => {
    scope.onmessage = (event) => {
      if (event.data.type === "init") resolve(event.data);
      else stop.abort();
    };
  });
  let served: Served;
  try {
    served = await serve({
      id: init.id,
      count: init.count,
      address: init.address,
      reusePort: true,
      counter: new SharedCounter(init.counter),
      connections: init.connections,
      signal: stop.signal,
    });
  } catch (error) {
    scope.postMessage({
      type: "failed",
      message: error instanceof Error ? error.message : String(error),
    });
    return;
  }
  scope.postMessage({ type: "ready" });
  await served.finished;
  scope.postMessage({ type: "stopped" });
}
