/**
 * compile: builds every script into `dist/<name>` with `deno compile`,
 * baking in the permissions of its deno.json task.
 *
 *     deno task compile                 # every script
 *     deno task compile tcp_echo_server # just one
 *
 * `deno compile` downloads its runtime (denort) unless `DENORT_BIN` names
 * a local copy.
 *
 * @module
 */
import denoConfig from "../deno.json" with { type: "json" };
import { runCommand, UsageError } from "../lib/cli/cli.ts";
import { printSync } from "../lib/io/print.ts";

const ROOT = new URL("../", import.meta.url).pathname;

/** The scripts that have a task, by name. */
export function scriptNames(): string[] {
  return Object.entries(denoConfig.tasks as Record<string, string>)
    .filter(([name, task]) => task.includes(`scripts/${name}.ts`))
    .map(([name]) => name);
}

/** The `deno compile` arguments for one script, with its task's permissions. */
export function compileArgs(name: string, output: string): string[] {
  const task = (denoConfig.tasks as Record<string, string>)[name];
  if (!task) throw new Error(`deno.json has no task "${name}"`);
  const words = task.trim().split(/\s+/);
  const flags = words.filter((w) => w.startsWith("--"));
  return ["compile", ...flags, "--output", output, `scripts/${name}.ts`];
}

/** Where the runtime download failed, from `deno compile`'s error output, or null. */
export function downloadFailure(stderr: string): string | null {
  const match = /error sending request for url \((\S+)\)/.exec(stderr);
  if (!match) return null;
  const causes = stderr.split("\n").map((l) => /^\s+\d+: (.*)$/.exec(l)?.[1]).filter(Boolean);
  return `cannot download ${match[1]}: ${causes.at(-1) ?? "no connection"}`;
}

/** Compiles one script; resolves to null on success, else what went wrong in one line or more. */
export async function compileScript(name: string, output: string): Promise<string | null> {
  const { code, stderr } = await new Deno.Command(Deno.execPath(), {
    args: compileArgs(name, output),
    cwd: ROOT,
    stdout: "null",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  if (code === 0) return null;
  const text = new TextDecoder().decode(stderr).replace(/\n*Stack backtrace:[\s\S]*$/, "");
  return downloadFailure(text) ?? text.trim();
}

const spec = {
  name: "compile",
  summary: "Builds scripts into standalone binaries in dist/ with their tasks' permissions.",
  args: "[SCRIPT...]",
  maxArgs: Infinity,
  options: {},
  notes: `With no SCRIPT every script is built. deno compile downloads the Deno runtime
(denort) once; offline, set DENORT_BIN to a local copy. The first failure stops
the build.

Examples:
  deno task compile
  deno task compile tcp_echo_server ws_client`,
} as const;

/** Builds the scripts named (default all); returns the exit code. */
export function main(args: string[]): Promise<number> {
  return runCommand(spec, args, async ({ positionals }) => {
    const all = scriptNames();
    for (const name of positionals) {
      if (!all.includes(name)) {
        throw new UsageError(`Unknown script "${name}" (have: ${all.join(", ")})`);
      }
    }
    const names = positionals.length > 0 ? positionals : all;
    for (const [i, name] of names.entries()) {
      const failure = await compileScript(name, `${ROOT}dist/${name}`);
      if (failure !== null) {
        // Offline every build fails the same way: one clear line, not one per script.
        const hint = Deno.env.get("DENORT_BIN")
          ? ""
          : " (offline? set DENORT_BIN to a local denort)";
        throw new Error(`${name}: ${failure}${hint}; ${i} of ${names.length} built`);
      }
      printSync(`compile: dist/${name}\n`);
    }
    printSync(`compile: ${names.length} binaries in dist/\n`);
    return 0;
  });
}

if (import.meta.main) Deno.exit(await main(Deno.args));
