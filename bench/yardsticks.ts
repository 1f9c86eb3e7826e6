/**
 * What the benchmarks share: building the Go yardsticks of
 * ../shared/bench, starting netkit scripts and Go peers side by side,
 * running a load generator and reading its `key=value` figures, and
 * printing ratios. Benchmarks print figures; they never pass or fail on
 * speed.
 *
 * @module
 */
import { ScriptProcess, startScript } from "../tests/helpers.ts";
import { buildGo } from "../tests/go_fixtures.ts";

const ROOT = new URL("../", import.meta.url).pathname;
/** Where ../shared/bench lives, next to the repository (`NETKIT_SHARED_BENCH` for a worktree). */
export const SHARED_BENCH = Deno.env.get("NETKIT_SHARED_BENCH") ?? `${ROOT}../shared/bench`;

let binDir: string | null = null;

/** Builds the Go load generators and peers once; returns their folder. */
export async function yardsticks(): Promise<string> {
  if (binDir) return binDir;
  const { code, stdout, stderr } = await new Deno.Command("bash", {
    args: [`${SHARED_BENCH}/build.sh`],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (code !== 0) {
    throw new Error(`../shared/bench/build.sh failed:\n${new TextDecoder().decode(stderr)}`);
  }
  const lines = new TextDecoder().decode(stdout).trim().split("\n");
  binDir = lines[lines.length - 1];
  return binDir;
}

/** Reads `key=value` pairs from a load generator's output. */
export function parseFigures(text: string): Record<string, number> {
  const figures: Record<string, number> = {};
  for (const [, key, value] of text.matchAll(/(\w+)=(-?[\d.]+)/g)) figures[key] = Number(value);
  return figures;
}

/** Runs a yardstick tool (`tcpload`, `wsload`, ...) and returns its figures. */
export async function runLoad(tool: string, args: string[]): Promise<Record<string, number>> {
  const bin = await yardsticks();
  const { code, stdout, stderr } = await new Deno.Command(`${bin}/${tool}`, {
    args,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const out = new TextDecoder().decode(stdout);
  const figures = parseFigures(out);
  if (code !== 0) {
    const err = new TextDecoder().decode(stderr).split("\n").slice(0, 5).join("\n");
    console.error(`${tool} ${args.join(" ")} exited ${code}: ${out.trim()}\n${err}`);
    figures.failed = 1;
  }
  return figures;
}

/** A free TCP port on 127.0.0.1, for peers that cannot take port 0. */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** Waits until something accepts TCP connections on 127.0.0.1:port. */
export async function waitForPort(port: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      conn.close();
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error(`Nothing listens on 127.0.0.1:${port}`);
}

/** A running Go peer server. */
export interface Peer extends AsyncDisposable {
  pid: number;
  port: number;
}

/** Starts a Go peer (`go-tcpecho`, `go-wsecho`, ...) on a free port and waits for it. */
export async function startGoPeer(name: string, args: string[] = []): Promise<Peer> {
  const bin = await yardsticks();
  const port = freePort();
  return await startOnPort(`${bin}/${name}`, ["-addr", `127.0.0.1:${port}`, ...args], port);
}

/**
 * Spawns `command` (output discarded), which must listen on `port`, and
 * waits until it does; disposing kills it.
 */
export async function startOnPort(command: string, args: string[], port: number): Promise<Peer> {
  const child = new Deno.Command(command, { args, stdout: "null", stderr: "null" }).spawn();
  await waitForPort(port);
  return {
    pid: child.pid,
    port,
    async [Symbol.asyncDispose]() {
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
      await child.status;
    },
  };
}

/** Builds bench/go/<name> into the yardsticks' folder, so runLoad and startGoPeer find it. */
export async function buildBenchTool(name: string): Promise<void> {
  const bin = await yardsticks();
  await using built = await buildGo(`${ROOT}bench/go/${name}`);
  await Deno.copyFile(built.path, `${bin}/${name}`);
}

/** Starts a netkit script on 127.0.0.1, port 0, quiet where it supports it. */
export function startNetkit(name: string, args: string[]): Promise<ScriptProcess> {
  return startScript(name, args);
}

/** The median of some numbers. */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Formats a ratio netkit/Go as `1.07x`. */
export function ratio(ours: number, theirs: number): string {
  return theirs > 0 ? `${(ours / theirs).toFixed(2)}x` : "n/a";
}

/** Prints rows as an aligned table (and returns it, for the README). */
export function printTable(title: string, rows: Array<Record<string, string | number>>): string {
  if (rows.length === 0) return "";
  const keys = Object.keys(rows[0]);
  const cells = [keys, ...rows.map((r) => keys.map((k) => String(r[k] ?? "")))];
  const widths = keys.map((_, i) => Math.max(...cells.map((row) => row[i].length)));
  const text = [
    `\n## ${title}`,
    ...cells.map((row, n) =>
      (n === 1 ? widths.map((w) => "-".repeat(w)).join("  ") + "\n" : "") +
      row.map((c, i) => c.padEnd(widths[i])).join("  ")
    ),
  ].join("\n");
  console.log(text);
  return text;
}
