/**
 * A headless Chromium for end-to-end tests, driven over the DevTools
 * protocol with Deno's own WebSocket (no npm package): open a page,
 * evaluate expressions in it, wait for a condition, take a screenshot.
 *
 * @module
 */
import { LineReader } from "../lib/io/lines.ts";
import { withTimeout } from "./helpers.ts";

/** The Chromium that Debian installs. */
export const CHROMIUM = "chromium";

interface Pending {
  resolve(value: Record<string, unknown>): void;
  reject(error: Error): void;
}

/** One headless browser with one page. */
export class Browser implements AsyncDisposable {
  #child: Deno.ChildProcess;
  #socket: WebSocket;
  #dir: string;
  #nextId = 1;
  #pending = new Map<number, Pending>();
  #session = "";
  #stderr: Promise<void>;

  private constructor(
    child: Deno.ChildProcess,
    socket: WebSocket,
    dir: string,
    stderr: Promise<void>,
  ) {
    this.#child = child;
    this.#socket = socket;
    this.#dir = dir;
    this.#stderr = stderr;
    socket.onmessage = (event) => {
      const message = JSON.parse(event.data as string);
      const pending = this.#pending.get(message.id);
      if (!pending) return;
      this.#pending.delete(message.id);
      if (message.error) pending.reject(new Error(`CDP: ${JSON.stringify(message.error)}`));
      else pending.resolve(message.result);
    };
  }

  /** Starts Chromium headless with a fresh profile and opens a blank page. */
  static async launch(): Promise<Browser> {
    const dir = await Deno.makeTempDir({ prefix: "netkit-chromium-" });
    const child = new Deno.Command(CHROMIUM, {
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--no-first-run",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1000,700",
        `--user-data-dir=${dir}`,
        "--remote-debugging-port=0",
        "about:blank",
      ],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const reader = new LineReader(child.stderr);
    let endpoint: string | null = null;
    try {
      endpoint = await withTimeout(
        (async () => {
          for await (const line of reader) {
            const match = /DevTools listening on (ws:\/\/\S+)/.exec(line);
            if (match) return match[1];
          }
          throw new Error("Chromium exited before listening");
        })(),
        20_000,
        "Chromium's DevTools endpoint",
      );
    } catch (error) {
      child.kill("SIGKILL");
      await child.status;
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      throw error;
    }
    // Keep draining stderr so Chromium never blocks on it.
    const draining = (async () => {
      for await (const _ of reader) { /* discard */ }
    })().catch(() => {});
    const socket = new WebSocket(endpoint);
    await new Promise((resolve, reject) => {
      socket.onopen = resolve;
      socket.onerror = () => reject(new Error(`Cannot connect to ${endpoint}`));
    });
    const browser = new Browser(child, socket, dir, draining);
    const { targetId } = await browser.#send("Target.createTarget", { url: "about:blank" });
    const { sessionId } = await browser.#send("Target.attachToTarget", {
      targetId,
      flatten: true,
    });
    browser.#session = sessionId as string;
    await browser.command("Page.enable");
    await browser.command("Runtime.enable");
    return browser;
  }

  /** Starts Chromium headless and opens `url`, waiting for it to load. */
  static async open(url: string): Promise<Browser> {
    const browser = await Browser.launch();
    try {
      await browser.goto(url);
    } catch (error) {
      await browser[Symbol.asyncDispose]();
      throw error;
    }
    return browser;
  }

  #send(
    method: string,
    params: Record<string, unknown> = {},
    sessionId?: string,
  ): Promise<Record<string, unknown>> {
    const id = this.#nextId++;
    const message = sessionId ? { id, method, params, sessionId } : { id, method, params };
    return withTimeout(
      new Promise((resolve, reject) => {
        this.#pending.set(id, { resolve, reject });
        this.#socket.send(JSON.stringify(message));
      }),
      15_000,
      `the answer to ${method}`,
    );
  }

  /** Sends a DevTools command to the page. */
  command(method: string, params: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    return this.#send(method, params, this.#session);
  }

  /** Opens a URL and waits for its load event. */
  async goto(url: string): Promise<void> {
    await this.command("Page.navigate", { url });
    await this.waitFor("document.readyState === 'complete'");
  }

  /** Evaluates an expression in the page and returns its value (promises are awaited). */
  async evaluate<T = unknown>(expression: string): Promise<T> {
    const result = await this.command("Runtime.evaluate", {
      expression,
      awaitPromise: true,
      returnByValue: true,
    });
    if (result.exceptionDetails) {
      throw new Error(`In the page: ${JSON.stringify(result.exceptionDetails)}`);
    }
    return (result.result as { value: T }).value;
  }

  /** Polls an expression until it is truthy, returning its value. */
  async waitFor<T = unknown>(expression: string, timeoutMs = 10_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    while (true) {
      const value = await this.evaluate<T>(expression).catch(() => undefined);
      if (value) return value;
      if (Date.now() > deadline) {
        throw new Error(`Timed out after ${timeoutMs} ms waiting for: ${expression}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Takes a PNG screenshot of the page. */
  async screenshot(): Promise<Uint8Array> {
    const { data } = await this.command("Page.captureScreenshot", { format: "png" });
    return Uint8Array.from(atob(data as string), (c) => c.charCodeAt(0));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    for (const pending of this.#pending.values()) pending.reject(new Error("Browser closed"));
    this.#pending.clear();
    const closed = new Promise((resolve) => {
      if (this.#socket.readyState === WebSocket.CLOSED) resolve(null);
      this.#socket.onclose = resolve;
    });
    this.#socket.close();
    await closed;
    try {
      this.#child.kill("SIGKILL");
    } catch {
      // Already gone.
    }
    await this.#child.status;
    await this.#stderr;
    await Deno.remove(this.#dir, { recursive: true }).catch(() => {});
  }
}
