/**
 * What the end-to-end tests share: spawning a script with exactly the
 * permissions its deno.json task grants, waiting for its ready line,
 * reading its output line by line, and talking to it over TCP.
 *
 * @module
 */
import denoConfig from "../deno.json" with { type: "json" };
import { LineReader, writeAll } from "../lib/io/lines.ts";
import { deadline, delay } from "../lib/io/deadline.ts";

export { delay };

/** The project root, where deno.json is. */
export const ROOT = new URL("../", import.meta.url).pathname;
const encoder = new TextEncoder();

/** Rejects with a clear message when `promise` takes longer than `ms`. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return deadline(promise, ms, `Timed out after ${ms} ms: ${what}`);
}

/** A script running under `script(1)`: its stdin and stdout are a terminal. */
export interface TerminalRun {
  /** Types `text` (a line ends with "\n"). */
  type(text: string): Promise<void>;
  /** Ends the input (Ctrl-D); idempotent. */
  end(): Promise<void>;
  /** Its exit code and terminal output, CRLF as LF, within `timeoutMs`. */
  output: Promise<{ code: number; text: string }>;
}

/**
 * Runs a script, with its task's permissions, in a pseudo-terminal; stderr
 * is dropped. Needs `script` (see {@link missingPeer}).
 */
export function runInTerminal(name: string, args: string[], timeoutMs = 15_000): TerminalRun {
  const quote = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;
  const command = [Deno.execPath(), ...taskArgs(name), ...args].map(quote).join(" ");
  const pty = new Deno.Command("script", {
    args: ["-qec", command, "/dev/null"],
    cwd: ROOT,
    stdin: "piped",
    stdout: "piped",
    stderr: "null",
    env: { NO_COLOR: "1" },
  }).spawn();
  const writer = pty.stdin.getWriter();
  const end = () => writer.close().catch(() => {});
  const output = withTimeout(pty.output(), timeoutMs, `${name} under script`)
    .finally(end)
    .then(({ code, stdout }) => ({
      code,
      text: new TextDecoder().decode(stdout).replaceAll("\r\n", "\n"),
    }));
  return { type: (text) => writer.write(encoder.encode(text)), end, output };
}

/**
 * The `deno` arguments of a script's task in deno.json, e.g.
 * `["run", "--allow-net=0.0.0.0,...", "scripts/tcp_echo_server.ts"]`, so
 * that tests run every script with the permissions users get.
 */
export function taskArgs(script: string): string[] {
  const tasks = denoConfig.tasks as Record<string, string>;
  const task = tasks[script];
  if (!task) throw new Error(`deno.json has no task "${script}"`);
  const words = task.trim().split(/\s+/);
  if (words[0] !== "deno") throw new Error(`Task "${script}" does not start with deno: ${task}`);
  return words.slice(1);
}

/** Whether a command exists on this machine (ncat, socat, chromium, go). */
export function hasCommand(name: string): boolean {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    try {
      if (Deno.statSync(`${dir}/${name}`).isFile) return true;
    } catch {
      // Not in this folder.
    }
  }
  return false;
}

/**
 * Whether a test that needs `name` should be ignored: only outside CI,
 * where CI installs everything and a missing peer must fail instead.
 */
export function missingPeer(name: string): boolean {
  if (hasCommand(name)) return false;
  if (Deno.env.get("CI")) return false; // Let the test run and fail loudly.
  console.error(`(skipping tests that need ${name}: not installed; .ci/run installs it)`);
  return true;
}

/**
 * Runs ncat (as a client: `["127.0.0.1", port]`) with `input` on its stdin
 * and returns what it printed once it exits; ncat half-closes after its
 * input and waits for the server to finish.
 */
export async function runNcat(
  args: string[],
  input: string,
  timeoutMs = 10_000,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const nc = new Deno.Command("ncat", {
    args,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = nc.stdin.getWriter();
  await w.write(encoder.encode(input));
  await w.close();
  const result = await withTimeout(nc.output(), timeoutMs, `ncat ${args.join(" ")}`);
  const decoder = new TextDecoder();
  return {
    code: result.code,
    stdout: decoder.decode(result.stdout),
    stderr: decoder.decode(result.stderr),
  };
}

/** Lines of a child's output as they arrive, with waiting for a match. */
export class OutputLines {
  readonly lines: string[] = [];
  #waiters: Array<() => void> = [];
  #closed = false;
  readonly done: Promise<void>;

  constructor(stream: ReadableStream<Uint8Array>) {
    this.done = this.#pump(stream);
  }

  /** Everything received so far, joined by newlines. */
  get text(): string {
    return this.lines.join("\n");
  }

  async #pump(stream: ReadableStream<Uint8Array>): Promise<void> {
    const reader = new LineReader(stream, { maxLineBytes: 16 * 1024 * 1024 });
    try {
      for await (const line of reader) {
        this.lines.push(line);
        this.#wake();
      }
    } finally {
      this.#closed = true;
      this.#wake();
    }
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }

  /**
   * Waits for the first line at or after index `from` that matches,
   * returning it; rejects if the stream ends or time runs out.
   */
  async waitFor(pattern: RegExp | string, timeoutMs = 10_000, from = 0): Promise<string> {
    const matches = (line: string) =>
      typeof pattern === "string" ? line.includes(pattern) : pattern.test(line);
    const search = async () => {
      let i = from;
      while (true) {
        for (; i < this.lines.length; i++) if (matches(this.lines[i])) return this.lines[i];
        if (this.#closed) throw new Error(`Output ended without a line matching ${pattern}`);
        await new Promise<void>((resolve) => this.#waiters.push(resolve));
      }
    };
    return await withTimeout(search(), timeoutMs, `a line matching ${pattern} in:\n${this.text}`);
  }

  /** Number of lines that match. */
  count(pattern: RegExp | string): number {
    return this.lines.filter((l) =>
      typeof pattern === "string" ? l.includes(pattern) : pattern.test(l)
    )
      .length;
  }
}

/** Options for {@link startScript}. */
export interface StartOptions {
  /** Whether the test writes to the script's stdin. Default false (stdin is null). */
  stdin?: boolean;
  /** Extra environment variables. */
  env?: Record<string, string>;
  /** Wait for `Listening on ...` on stdout before returning. Default true. */
  waitReady?: boolean;
  /** How long to wait for the ready line. Default 15 s. */
  readyTimeoutMs?: number;
}

/** A spawned script: its output, its stdin, its address, and its end. */
export class ScriptProcess implements AsyncDisposable {
  readonly child: Deno.ChildProcess;
  readonly stdout: OutputLines;
  readonly stderr: OutputLines;
  /** The port from the ready line, once it has been seen. */
  port = 0;
  /** The host from the ready line. */
  hostname = "";
  #stdin: WritableStreamDefaultWriter<Uint8Array> | null;
  #status: Promise<Deno.CommandStatus>;

  constructor(child: Deno.ChildProcess, stdin: boolean) {
    this.child = child;
    this.stdout = new OutputLines(child.stdout);
    this.stderr = new OutputLines(child.stderr);
    this.#stdin = stdin ? child.stdin.getWriter() : null;
    this.#status = child.status;
  }

  /** The exit status, once the process has ended. */
  get status(): Promise<Deno.CommandStatus> {
    return this.#status;
  }

  /** Everything it printed on stdout and stderr, for assertion messages. */
  get output(): string {
    return `--- stdout\n${this.stdout.text}\n--- stderr\n${this.stderr.text}`;
  }

  /** Waits for `Listening on <scheme>://H:P` and records the address. */
  async ready(timeoutMs = 15_000): Promise<this> {
    const line = await this.stdout.waitFor(/Listening on /, timeoutMs).catch((error) => {
      throw new Error(`${error.message}\n${this.output}`);
    });
    const match = /Listening on \w+:\/\/(\[[^\]]+\]|[^:]+):(\d+)/.exec(line);
    if (match) {
      this.hostname = match[1].replace(/^\[|\]$/g, "");
      this.port = Number(match[2]);
    }
    return this;
  }

  /** Writes text to the script's stdin. */
  async write(text: string | Uint8Array): Promise<void> {
    if (!this.#stdin) throw new Error("Started without stdin: true");
    await this.#stdin.write(typeof text === "string" ? encoder.encode(text) : text);
  }

  /** Closes the script's stdin (end of input). */
  async closeStdin(): Promise<void> {
    if (!this.#stdin) return;
    const w = this.#stdin;
    this.#stdin = null;
    await w.close().catch(() => {});
  }

  /** Sends a signal, ignoring a process that has already ended. */
  kill(signal: Deno.Signal = "SIGTERM"): void {
    try {
      this.child.kill(signal);
    } catch {
      // Already gone.
    }
  }

  /** Waits for the exit and all output; rejects after `timeoutMs`. */
  async exit(timeoutMs = 10_000): Promise<Deno.CommandStatus> {
    const status = await withTimeout(this.#status, timeoutMs, `the script to exit\n${this.output}`);
    await Promise.all([this.stdout.done, this.stderr.done]);
    return status;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.closeStdin();
    this.kill("SIGKILL");
    await this.#status;
    await Promise.all([this.stdout.done, this.stderr.done]);
  }
}

/**
 * Spawns `scripts/<name>.ts` as its deno.json task does and, unless told
 * otherwise, waits for its ready line.
 */
export async function startScript(
  name: string,
  args: string[] = [],
  options: StartOptions = {},
): Promise<ScriptProcess> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [...taskArgs(name), ...args],
    cwd: ROOT,
    stdin: options.stdin ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", ...options.env },
  }).spawn();
  const proc = new ScriptProcess(child, options.stdin ?? false);
  if (options.waitReady ?? true) {
    try {
      await proc.ready(options.readyTimeoutMs);
    } catch (error) {
      await proc[Symbol.asyncDispose]();
      throw error;
    }
  }
  return proc;
}

/** Runs a script to completion and returns its exit code and output. */
export async function runScript(
  name: string,
  args: string[],
  options: { stdin?: string; env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  await using proc = await startScript(name, args, {
    stdin: options.stdin !== undefined,
    env: options.env,
    waitReady: false,
  });
  if (options.stdin !== undefined) {
    await proc.write(options.stdin);
    await proc.closeStdin();
  }
  const status = await proc.exit(options.timeoutMs ?? 15_000);
  return { code: status.code, stdout: proc.stdout.text, stderr: proc.stderr.text };
}

/** A TCP client for tests: send lines, read lines with a timeout. */
export class TcpPeer implements AsyncDisposable {
  readonly conn: Deno.TcpConn;
  readonly reader: LineReader;
  #closed = false;

  private constructor(conn: Deno.TcpConn, maxLineBytes: number) {
    this.conn = conn;
    this.reader = new LineReader(conn, { maxLineBytes });
  }

  /** Connects to `hostname:port` (default 127.0.0.1). */
  static async connect(port: number, hostname = "127.0.0.1", maxLineBytes = 1 << 24) {
    return new TcpPeer(await Deno.connect({ hostname, port }), maxLineBytes);
  }

  /** Sends raw bytes or text as it is (add the newline yourself). */
  async send(data: string | Uint8Array): Promise<void> {
    await writeAll(this.conn, typeof data === "string" ? encoder.encode(data) : data);
  }

  /** Reads one line, failing after `timeoutMs`; null at end of stream. */
  readLine(timeoutMs = 5_000): Promise<string | null> {
    return withTimeout(this.reader.readLine(), timeoutMs, "a line from the server");
  }

  /** Reads lines until one matches `pattern` and returns it; fails on end of stream or timeout. */
  until(pattern: RegExp, timeoutMs = 8_000): Promise<string> {
    const seen: string[] = [];
    return withTimeout(
      (async () => {
        while (true) {
          const line = await this.reader.readLine();
          if (line === null) {
            throw new Error(`Closed before ${pattern}; saw ${JSON.stringify(seen)}`);
          }
          seen.push(line);
          if (pattern.test(line)) return line;
        }
      })(),
      timeoutMs,
      `a line matching ${pattern} (saw ${JSON.stringify(seen)})`,
    );
  }

  /** Reads until the server closes, returning every remaining line. */
  async readAll(timeoutMs = 5_000): Promise<string[]> {
    const lines: string[] = [];
    const collect = async () => {
      for (let l = await this.reader.readLine(); l !== null; l = await this.reader.readLine()) {
        lines.push(l);
      }
    };
    await withTimeout(collect(), timeoutMs, `the server to close (got ${JSON.stringify(lines)})`);
    return lines;
  }

  /** Half-closes: the server sees end of stream, replies can still arrive. */
  async closeWrite(): Promise<void> {
    await this.conn.closeWrite();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.conn.close();
    } catch {
      // Already closed.
    }
  }

  [Symbol.asyncDispose](): Promise<void> {
    this.close();
    return Promise.resolve();
  }
}

/**
 * Starts ws_chat_server on 127.0.0.1 with free ports. `tcpPort` is its TCP
 * side's, read from the second ready line; 0 when `args` has `--tcp-port=off`.
 */
export async function startWsChat(
  args: string[] = [],
): Promise<ScriptProcess & { tcpPort: number }> {
  const tcpOff = args.includes("--tcp-port=off");
  const server = await startScript("ws_chat_server", [
    "--host=127.0.0.1",
    "--port=0",
    ...(tcpOff ? [] : ["--tcp-port=0"]),
    ...args,
  ]);
  if (tcpOff) return Object.assign(server, { tcpPort: 0 });
  const line = await server.stdout.waitFor(/Listening on tcp:/);
  return Object.assign(server, { tcpPort: Number(/:(\d+) /.exec(line)![1]) });
}

/** Asks ws_random_server for `count` integers as a client that reads them all; resolves with how many came. */
export function readRandomStream(port: number, count: number): Promise<number> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
  let received = 0;
  ws.onopen = () => ws.send(String(count));
  ws.onmessage = () => received++;
  return new Promise((resolve) => ws.onclose = () => resolve(received));
}
