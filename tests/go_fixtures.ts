/**
 * Go programs kept as test fixtures (`tests/fixtures/<name>/main.go`),
 * built with the system's `go` (GOPATH mode, a throwaway build cache) and
 * started as real peers.
 *
 * @module
 */
import { OutputLines, ROOT } from "./helpers.ts";

/** A built fixture: the binary's path; disposing removes it. */
export interface GoBinary extends AsyncDisposable {
  readonly path: string;
}

/** Where Debian installs Go libraries (gorilla/websocket) for GOPATH builds. */
const DEBIAN_GOPATH = "/usr/share/gocode";

/** Builds `tests/fixtures/<name>` into a temporary folder with `go build`. */
export function buildGoFixture(name: string): Promise<GoBinary> {
  return buildGo(`${ROOT}tests/fixtures/${name}`);
}

/**
 * Builds the Go `main` package in `source` (a folder) into a temporary
 * folder; Debian's Go libraries are on its GOPATH.
 */
export async function buildGo(source: string): Promise<GoBinary> {
  const name = source.replace(/\/+$/, "").split("/").pop() ?? "main";
  const dir = await Deno.makeTempDir({ prefix: `netkit-${name}-` });
  const path = `${dir}/${name}`;
  const { code, stderr } = await new Deno.Command("go", {
    args: ["build", "-o", path, "."],
    cwd: source,
    env: { GO111MODULE: "off", GOCACHE: `${dir}/gocache`, GOFLAGS: "", GOPATH: DEBIAN_GOPATH },
    stdout: "null",
    stderr: "piped",
  }).output();
  const dispose = () => Deno.remove(dir, { recursive: true }).catch(() => {});
  if (code !== 0) {
    await dispose();
    throw new Error(`go build ${name} failed:\n${new TextDecoder().decode(stderr)}`);
  }
  return { path, [Symbol.asyncDispose]: dispose };
}

/** A running Go fixture server and its port (from its `Listening on` line). */
export interface GoServer extends AsyncDisposable {
  readonly port: number;
  readonly stdout: OutputLines;
}

/** Starts a built Go server on 127.0.0.1, port 0, and waits for its ready line. */
export async function startGoServer(binary: GoBinary): Promise<GoServer> {
  const child = new Deno.Command(binary.path, {
    args: ["-addr", "127.0.0.1:0"],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stdout = new OutputLines(child.stdout);
  const stderr = new OutputLines(child.stderr);
  const dispose = async () => {
    try {
      child.kill("SIGKILL");
    } catch {
      // Already gone.
    }
    await child.status;
    await Promise.all([stdout.done, stderr.done]);
  };
  try {
    const line = await stdout.waitFor(/Listening on tcp:\/\//, 10_000);
    return { port: Number(/:(\d+)$/.exec(line)![1]), stdout, [Symbol.asyncDispose]: dispose };
  } catch (error) {
    await dispose();
    throw error;
  }
}
