/**
 * Headless Chromium for tests, driven over the DevTools protocol directly
 * (no npm package): open a page, evaluate JavaScript in it, wait for a
 * condition.
 *
 * @module
 */
import { delay, OutputLines, withTimeout } from "./helpers.ts";

/** A headless Chromium with one page. */
export class Browser implements AsyncDisposable {
  #child: Deno.ChildProcess;
  #stderr: OutputLines;
  #dir: string;
  #ws: WebSocket | null = null;
  #nextId = 1;
  #pending = new Map<number, (reply: { result?: unknown; error?: { message: string } }) => void>();
  #sessionId = "";

  private constructor(child: Deno.ChildProcess, stderr: OutputLines, dir: string) {
    this.#child = child;
    this.#stderr = stderr;
    this.#dir = dir;
  }

  /** Starts Chromium and opens `url` in a new page. */
  static async open(url: string): Promise<Browser> {
    const dir = await Deno.makeTempDir({ prefix: "netkit-chromium-" });
    const child = new Deno.Command("chromium", {
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--no-first-run",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        `--user-data-dir=${dir}`,
        "--remote-debugging-port=0",
        "about:blank",
      ],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const browser = new Browser(child, new OutputLines(child.stderr), dir);
    try {
      const line = await browser.#stderr.waitFor(/DevTools listening on ws:\/\//, 30_000);
      await browser.#connect(line.slice(line.indexOf("ws://")).trim());
      const { targetId } = await browser.#send("Target.createTarget", { url }) as {
        targetId: string;
      };
      const { sessionId } = await browser.#send("Target.attachToTarget", {
        targetId,
        flatten: true,
      }) as { sessionId: string };
      browser.#sessionId = sessionId;
    } catch (error) {
      await browser[Symbol.asyncDispose]();
      throw error;
    }
    return browser;
  }

  async #connect(url: string): Promise<void> {
    const ws = new WebSocket(url);
    this.#ws = ws;
    ws.onmessage = (event) => {
      const message = JSON.parse(event.data as string);
      const resolve = this.#pending.get(message.id);
      if (resolve) {
        this.#pending.delete(message.id);
        resolve(message);
      }
    };
    await withTimeout(
      new Promise((resolve, reject) => {
        ws.onopen = resolve;
        ws.onerror = () => reject(new Error("Cannot reach Chromium's DevTools"));
      }),
      10_000,
      "Chromium's DevTools socket",
    );
  }

  async #send(method: string, params: Record<string, unknown>, session = ""): Promise<unknown> {
    const id = this.#nextId++;
    const reply = new Promise<{ result?: unknown; error?: { message: string } }>((resolve) =>
      this.#pending.set(id, resolve)
    );
    this.#ws!.send(
      JSON.stringify({ id, method, params, ...(session ? { sessionId: session } : {}) }),
    );
    const answer = await withTimeout(reply, 10_000, `DevTools ${method}`);
    if (answer.error) throw new Error(`${method}: ${answer.error.message}`);
    return answer.result;
  }

  /** Evaluates an expression in the page and returns its value. */
  async evaluate<T>(expression: string): Promise<T> {
    const result = await this.#send("Runtime.evaluate", {
      expression,
      returnByValue: true,
      awaitPromise: true,
    }, this.#sessionId) as { result: { value: T }; exceptionDetails?: { text: string } };
    if (result.exceptionDetails) throw new Error(`In the page: ${result.exceptionDetails.text}`);
    return result.result.value;
  }

  /** Evaluates `expression` until it is truthy; returns its last value. */
  async waitFor<T>(expression: string, timeoutMs = 10_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    while (true) {
      const value = await this.evaluate<T>(expression).catch(() => undefined);
      if (value) return value;
      if (Date.now() > deadline) throw new Error(`Timed out waiting in the page for ${expression}`);
      await delay(50);
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (this.#ws) {
      const ws = this.#ws;
      const closed = new Promise((resolve) => ws.onclose = resolve);
      ws.close();
      await withTimeout(closed, 5_000, "DevTools socket close").catch(() => {});
    }
    try {
      this.#child.kill("SIGKILL");
    } catch {
      // Already gone.
    }
    await this.#child.status;
    await this.#stderr.done;
    await Deno.remove(this.#dir, { recursive: true }).catch(() => {});
  }
}
