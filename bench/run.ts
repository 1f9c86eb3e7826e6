/**
 * bench: runs the load benchmarks, `bench/<topic>_bench.ts`, one after the
 * other, each in its own process. Each prints netkit's figures beside the
 * Go yardstick's from the same run, and the ratio.
 *
 *     deno task bench          # every benchmark
 *     deno task bench tcp ws   # just these topics
 *     deno task bench soak --seconds 10   # options go to each bench
 *
 * @module
 */
import { runCommand, UsageError } from "../lib/cli/cli.ts";
import { printSync } from "../lib/io/print.ts";

const here = new URL("./", import.meta.url).pathname;

/** The topics that have a `bench/<topic>_bench.ts`, sorted. */
export function benchTopics(): string[] {
  return [...Deno.readDirSync(here)]
    .map((e) => /^(\w+)_bench\.ts$/.exec(e.name)?.[1])
    .filter((t): t is string => t !== undefined)
    .sort();
}

const spec = {
  name: "bench",
  summary: "Runs the load benchmarks beside their Go yardsticks and prints the ratios.",
  args: "[TOPIC...]",
  maxArgs: Infinity,
  options: {
    seconds: {
      type: "string",
      arg: "N",
      description: "how long the soak runs (default 60; CI runs 10)",
    },
  },
  notes: `With no TOPIC every benchmark runs. The topics are the files
bench/<topic>_bench.ts: ${benchTopics().join(", ")}. Only loopback is loaded; the
figures are meant for docs/benchmarks.md.

Examples:
  deno task bench
  deno task bench tcp ws
  deno task bench soak --seconds 10`,
} as const;

/** Runs the benchmarks named (default all); returns the exit code. */
export function main(args: string[]): Promise<number> {
  return runCommand(spec, args, async ({ positionals, values }) => {
    const all = benchTopics();
    for (const t of positionals) {
      if (!all.includes(t)) throw new UsageError(`Unknown topic "${t}" (have: ${all.join(", ")})`);
    }
    let failed = 0;
    for (const topic of positionals.length > 0 ? positionals : all) {
      printSync(`\n# ${topic}\n`);
      const { code } = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          `${here}${topic}_bench.ts`,
          ...(topic === "soak" && values.seconds ? ["--seconds", values.seconds] : []),
        ],
        stdout: "inherit",
        stderr: "inherit",
      }).output();
      if (code !== 0) failed++;
    }
    return failed > 0 ? 1 : 0;
  });
}

if (import.meta.main) Deno.exit(await main(Deno.args));
