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

/** Compiles one script; resolves to whether it succeeded. */
export async function compileScript(name: string, output: string): Promise<boolean> {
  const { code } = await new Deno.Command(Deno.execPath(), {
    args: compileArgs(name, output),
    cwd: ROOT,
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  return code === 0;
}

async function main(args: string[]): Promise<number> {
  const names = args.length > 0 ? args : scriptNames();
  let failed = 0;
  for (const name of names) {
    if (!(await compileScript(name, `${ROOT}dist/${name}`))) failed++;
  }
  if (failed > 0) {
    console.error(
      `compile: ${failed} of ${names.length} failed` +
        (Deno.env.get("DENORT_BIN")
          ? ""
          : " (deno compile downloads denort; set DENORT_BIN to a local copy)"),
    );
    return 1;
  }
  console.log(`compile: ${names.length} binaries in dist/`);
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
