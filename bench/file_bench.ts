/**
 * file bench: sends a 1 GiB file of random bytes over loopback to a
 * receiver writing to disk, SHA-256 on both sides, and compares it in the
 * same run with `cat big > copy`, ncat and socat. Twice: until the last
 * byte is written (the page cache takes it), and until the copy is
 * flushed to disk. Runs alternate and repeat; tables show the medians of
 * the wall time and of the CPU time all processes of a run used (user +
 * system; on a busy machine the steadier figure), and, for reference, how
 * long SHA-256 of the same number of bytes takes in memory: the floor of
 * one side's work, which both sides of a verified transfer pay.
 *
 *     deno task bench file                 # 1 GiB, 3 rounds
 *     deno task bench file -- --mib 256    # (via deno run) a smaller file
 *
 * The big files live in a temp folder on the same disk as the project and
 * are deleted at the end.
 *
 * @module
 */
import { createHash, randomFillSync } from "node:crypto";
import { parseArgs } from "node:util";
import { runScript } from "../tests/helpers.ts";
import { freePort, median, printTable, ratio, startNetkit } from "./yardsticks.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const MIB = 1024 * 1024;

/** Where the big files go: /tmp when it is on the project's disk, else beside the project. */
function benchDir(): string {
  const sameDisk = Deno.statSync("/tmp").dev === Deno.statSync(ROOT).dev;
  return Deno.makeTempDirSync({
    dir: sameDisk ? "/tmp" : `${ROOT}..`,
    prefix: "netkit_file_bench_",
  });
}

/** Writes `mib` MiB of random bytes. */
async function makeRandomFile(path: string, mib: number): Promise<void> {
  using file = await Deno.open(path, { write: true, create: true, truncate: true });
  const block = new Uint8Array(4 * MIB);
  for (let done = 0; done < mib; done += 4) {
    randomFillSync(block);
    const n = Math.min(4, mib - done) * MIB;
    let off = 0;
    while (off < n) off += await file.write(block.subarray(off, n));
  }
}

/** Flushes dirty pages so that one run's writeback does not slow the next. */
async function sync(): Promise<void> {
  await new Deno.Command("sync").output();
}

async function timed(run: () => Promise<void>): Promise<number> {
  const t = performance.now();
  await run();
  return (performance.now() - t) / 1000;
}

/**
 * CPU seconds (user + system) used so far by this process's children that
 * have ended, from /proc/self/stat (cutime, cstime); NaN where there is none.
 */
function childCpuSeconds(): number {
  try {
    const stat = Deno.readTextFileSync("/proc/self/stat");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[13]) + Number(fields[14])) / CLOCK_TICKS;
  } catch {
    return NaN;
  }
}
/** USER_HZ, the unit of /proc times: 100 on every Linux architecture netkit runs on. */
const CLOCK_TICKS = 100;

/** Seconds node:crypto's streaming SHA-256 takes for `mib` MiB in memory, 256 KiB at a time. */
function hashSeconds(mib: number): number {
  const block = randomFillSync(new Uint8Array(256 * 1024));
  const hash = createHash("sha256");
  const t = performance.now();
  for (let done = 0; done < mib * 4; done++) hash.update(block);
  hash.digest();
  return (performance.now() - t) / 1000;
}

async function sh(script: string): Promise<void> {
  const { code, stderr } = await new Deno.Command("bash", { args: ["-c", script], stderr: "piped" })
    .output();
  if (code !== 0) throw new Error(`${script}: ${new TextDecoder().decode(stderr)}`);
}

async function sizeOf(path: string): Promise<number> {
  return (await Deno.stat(path)).size;
}

function hasCommand(name: string): boolean {
  return (Deno.env.get("PATH") ?? "").split(":").some((dir) => {
    try {
      return Deno.statSync(`${dir}/${name}`).isFile;
    } catch {
      return false;
    }
  });
}

/** One way of copying `big` to `dir/copy`; with `durable`, until it is on disk. Returns seconds. */
type Contender = (big: string, dir: string, durable: boolean) => Promise<number>;

/** `sync FILE` (coreutils: fsync of that file), or nothing. */
const syncCopy = (dir: string, durable: boolean) => durable ? ` && sync '${dir}/copy'` : "";

/** Lets a listener started in the background bind its port. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 300));

const contenders: Record<string, Contender> = {
  "cat big > copy": (big, dir, durable) =>
    timed(() => sh(`cat '${big}' > '${dir}/copy'${syncCopy(dir, durable)}`)),
  "netkit file_send -> file_recv": async (big, dir, durable) => {
    await Deno.mkdir(`${dir}/in`, { recursive: true });
    const args = ["127.0.0.1:0", "--dir", `${dir}/in`, "-q", ...(durable ? ["--fsync"] : [])];
    await using server = await startNetkit("file_recv", args);
    const seconds = await timed(async () => {
      const r = await runScript("file_send", [`127.0.0.1:${server.port}`, big, "--as", "copy"], {
        timeoutMs: 600_000,
      });
      if (r.code !== 0) throw new Error(`file_send failed: ${r.stderr}`);
    });
    await Deno.rename(`${dir}/in/copy`, `${dir}/copy`);
    return seconds;
  },
  "ncat -l > copy, ncat < big": async (big, dir, durable) => {
    const port = freePort();
    const listener = new Deno.Command("bash", {
      args: ["-c", `ncat -l 127.0.0.1 ${port} > '${dir}/copy'${syncCopy(dir, durable)}`],
    }).spawn();
    await settle();
    return await timed(async () => {
      await sh(`ncat --send-only 127.0.0.1 ${port} < '${big}'`);
      await listener.status;
    });
  },
  "socat TCP-LISTEN > copy, socat < big": async (big, dir, durable) => {
    const port = freePort();
    const listener = new Deno.Command("bash", {
      args: [
        "-c",
        `socat -u TCP-LISTEN:${port},bind=127.0.0.1,reuseaddr 'CREATE:${dir}/copy'` +
        syncCopy(dir, durable),
      ],
    }).spawn();
    await settle();
    return await timed(async () => {
      await sh(`socat -u 'FILE:${big}' TCP:127.0.0.1:${port}`);
      await listener.status;
    });
  },
};

async function main(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { mib: { type: "string", default: "1024" }, rounds: { type: "string", default: "3" } },
  });
  const mib = Number(values.mib);
  const rounds = Number(values.rounds);
  const names = Object.keys(contenders).filter((name) =>
    !name.startsWith("ncat") && !name.startsWith("socat") || hasCommand(name.split(" ")[0])
  );
  const dir = benchDir();
  const big = `${dir}/big`;
  const modes = [false, true];
  const label = (name: string, durable: boolean) => `${name}${durable ? ", synced" : ""}`;
  const seconds: Record<string, number[]> = {};
  const cpu: Record<string, number[]> = {};
  const hashing: number[] = [];
  for (const durable of modes) {
    for (const n of names) {
      seconds[label(n, durable)] = [];
      cpu[label(n, durable)] = [];
    }
  }
  try {
    console.log(`Writing ${mib} MiB of random bytes to ${big} ...`);
    await makeRandomFile(big, mib);
    await sync();
    for (let round = 1; round <= rounds; round++) {
      for (const durable of modes) {
        for (const name of names) {
          const cpuBefore = childCpuSeconds();
          const s = await contenders[name](big, dir, durable);
          const used = childCpuSeconds() - cpuBefore;
          const copied = await sizeOf(`${dir}/copy`);
          if (copied !== mib * MIB) throw new Error(`${name}: copy has ${copied} bytes`);
          await Deno.remove(`${dir}/copy`);
          seconds[label(name, durable)].push(s);
          cpu[label(name, durable)].push(used);
          console.log(
            `round ${round}: ${label(name, durable)}: ${s.toFixed(2)} s, CPU ${used.toFixed(2)} s`,
          );
          await sync();
        }
      }
      hashing.push(hashSeconds(mib));
      console.log(
        `round ${round}: SHA-256 of ${mib} MiB in memory: ${hashing.at(-1)!.toFixed(2)} s`,
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  for (const durable of modes) {
    const base = median(seconds[label("cat big > copy", durable)]);
    const cpuBase = median(cpu[label("cat big > copy", durable)]);
    const title = durable
      ? "to disk: each run ends when the copy is flushed (sync FILE, file_recv --fsync)"
      : "to the page cache: each run ends when the last byte is written";
    printTable(
      `${mib} MiB over loopback, ${title}; median of ${rounds} (shared, busy machine)`,
      names.map((name) => {
        const runs = seconds[label(name, durable)];
        const cpus = cpu[label(name, durable)];
        return {
          way: name,
          seconds: median(runs).toFixed(2),
          "MiB/s": (mib / median(runs)).toFixed(0),
          "vs cat": ratio(median(runs), base),
          runs: runs.map((s) => s.toFixed(2)).join(" "),
          "CPU s": median(cpus).toFixed(2),
          "CPU vs cat": ratio(median(cpus), cpuBase),
        };
      }),
    );
  }
  const hash = median(hashing);
  console.log(
    `\nSHA-256 of ${mib} MiB in memory (node:crypto, one side's hashing): ${hash.toFixed(2)} s, ` +
      `${ratio(hash, median(seconds[label("cat big > copy", false)]))} of cat to the page cache`,
  );
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
