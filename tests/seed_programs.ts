/**
 * The seeds' own Go programs, cut out of the seed texts at test time and
 * built with the system's `go`: the address literals they hard-code are
 * routed through `SEED_ADDR`, and their listeners print netkit's ready
 * line, by a shim file added beside the seed's code (the code itself is
 * kept as the seed has it).
 *
 * @module
 */
import { existsSync } from "node:fs";
import { buildGo, type GoBinary } from "./go_fixtures.ts";
import { OutputLines, ROOT } from "./helpers.ts";

/** Where the seeds are: `../shared/seeds` beside the clone (CI), else the shared folder. */
export const SEEDS_DIR =
  [`${ROOT}../shared/seeds`, "/work/shared/seeds"].find((dir) => existsSync(dir)) ?? null;

/** Why seed programs cannot run here, or false when they can (for `Deno.test`'s `ignore`). */
export function missingSeeds(): boolean {
  if (SEEDS_DIR === null) return true;
  try {
    new Deno.Command("go", { args: ["version"], stdout: "null", stderr: "null" }).outputSync();
    return false;
  } catch {
    return true;
  }
}

const SHIM = `package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
)

func seedAddr(def string) string {
	if addr := os.Getenv("SEED_ADDR"); addr != "" {
		return addr
	}
	return def
}

func seedListen(listen func(string, string) (net.Listener, error), network, addr string) (net.Listener, error) {
	l, err := listen(network, seedAddr(addr))
	if err == nil {
		fmt.Printf("Listening on tcp://%s\\n", l.Addr())
	}
	return l, err
}

func seedListenAndServe(_ func(string, http.Handler) error, addr string, h http.Handler) error {
	l, err := seedListen(net.Listen, "tcp", addr)
	if err != nil {
		return err
	}
	return http.Serve(l, h)
}
`;

function unescapeHtml(text: string): string {
  return text.replaceAll("<!-- -->", "").replaceAll("&lt;", "<").replaceAll("&gt;", ">")
    .replaceAll("&quot;", '"').replaceAll("&amp;", "&");
}

const TOP_LEVEL = /^(package|import|type|func|var|const|\/\/|\)|"|\s*$)/;

/**
 * Every Go program (`package main` to its end) in a seed text: up to a
 * closing code fence, or, in seeds without fences, up to the first line
 * outside any brace or paren that is no Go declaration.
 */
export function extractGoPrograms(text: string): string[] {
  const lines = unescapeHtml(text).split("\n");
  const programs: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (lines[i].trim() !== "package main") continue;
    const out: string[] = [];
    let depth = 0;
    for (let j = i; j < lines.length; j++) {
      const line = lines[j];
      if (line.startsWith("```") || (j > i && line.trim() === "package main")) break;
      if (depth === 0 && j > i && !TOP_LEVEL.test(line)) break;
      const code = line.replace(/\/\/.*$/, "").replace(
        /"(\\.|[^"\\])*"|`[^`]*`|'(\\.|[^'\\])*'/g,
        "",
      );
      for (const c of code) {
        if (c === "{" || c === "(") depth++;
        if (c === "}" || c === ")") depth--;
      }
      out.push(line);
    }
    programs.push(out.join("\n").trimEnd() + "\n");
  }
  return programs;
}

/** The one program of seed file `seed` (a prefix such as "001") whose code contains `marker`. */
export async function seedSource(seed: string, marker: string): Promise<string> {
  if (SEEDS_DIR === null) throw new Error("The seeds are not here");
  const file = [...Deno.readDirSync(SEEDS_DIR)].find((e) => e.name.startsWith(seed + "_"));
  if (!file) throw new Error(`No seed ${seed} in ${SEEDS_DIR}`);
  const found = extractGoPrograms(await Deno.readTextFile(`${SEEDS_DIR}/${file.name}`))
    .filter((p) => p.includes(marker));
  if (found.length !== 1) {
    throw new Error(`Seed ${seed}: ${found.length} programs contain ${JSON.stringify(marker)}`);
  }
  return found[0];
}

/** Routes the program's addresses and listeners through the shim. */
function patch(source: string): string {
  return source
    .replace(/"((?:localhost|127\.0\.0\.1)?:\d+)"/g, 'seedAddr("$1")')
    .replaceAll("net.Listen(", "seedListen(net.Listen, ")
    .replaceAll("http.ListenAndServe(", "seedListenAndServe(http.ListenAndServe, ");
}

/** Builds the seed program found by `marker`; disposing the binary removes it. */
export async function buildSeed(seed: string, marker: string): Promise<GoBinary> {
  const dir = await Deno.makeTempDir({ prefix: `netkit-seed${seed}-` });
  const name = `${dir}/seed${seed}_${marker.replace(/\W+/g, "_")}`;
  try {
    await Deno.mkdir(name);
    await Deno.writeTextFile(`${name}/main.go`, patch(await seedSource(seed, marker)));
    await Deno.writeTextFile(`${name}/seed_shim.go`, SHIM);
    return await buildGo(name);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** A running seed program. */
export interface SeedProcess extends AsyncDisposable {
  readonly child: Deno.ChildProcess;
  readonly stdout: OutputLines;
  readonly stderr: OutputLines;
  /** Writes to its stdin. */
  type(text: string): Promise<void>;
}

/** Starts a built seed program with `SEED_ADDR=addr`. */
export function startSeed(binary: GoBinary, addr: string, args: string[] = []): SeedProcess {
  const child = new Deno.Command(binary.path, {
    args,
    env: { SEED_ADDR: addr },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stdout = new OutputLines(child.stdout);
  const stderr = new OutputLines(child.stderr);
  const writer = child.stdin.getWriter();
  return {
    child,
    stdout,
    stderr,
    type: (text) => writer.write(new TextEncoder().encode(text)),
    async [Symbol.asyncDispose]() {
      await writer.close().catch(() => {});
      try {
        child.kill("SIGKILL");
      } catch {
        // Already gone.
      }
      await child.status;
      await Promise.all([stdout.done, stderr.done]);
    },
  };
}

/** Starts a seed server on a free loopback port and waits for the shim's ready line. */
export async function startSeedServer(
  binary: GoBinary,
): Promise<SeedProcess & { readonly port: number }> {
  const server = startSeed(binary, "127.0.0.1:0");
  try {
    const line = await server.stdout.waitFor(/Listening on tcp:\/\//, 10_000);
    return Object.assign(server, { port: Number(/:(\d+)$/.exec(line)![1]) });
  } catch (error) {
    await server[Symbol.asyncDispose]();
    throw error;
  }
}
