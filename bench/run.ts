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

const here = new URL("./", import.meta.url).pathname;

async function main(args: string[]): Promise<number> {
  const all = [...Deno.readDirSync(here)]
    .map((e) => /^(\w+)_bench\.ts$/.exec(e.name)?.[1])
    .filter((t): t is string => t !== undefined)
    .sort();
  // Options (`--seconds 10`) go to every bench run; the other words name topics.
  const flagAt = args.findIndex((a) => a.startsWith("-"));
  const words = flagAt < 0 ? args : args.slice(0, flagAt);
  const flags = flagAt < 0 ? [] : args.slice(flagAt);
  const topics = words.length > 0 ? words : all;
  for (const t of topics) {
    if (!all.includes(t)) {
      console.error(`bench: no bench/${t}_bench.ts (have: ${all.join(", ")})`);
      return 2;
    }
  }
  let failed = 0;
  for (const topic of topics) {
    console.log(`\n# ${topic}`);
    const { code } = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", `${here}${topic}_bench.ts`, ...flags],
      stdout: "inherit",
      stderr: "inherit",
    }).output();
    if (code !== 0) failed++;
  }
  return failed > 0 ? 1 : 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
