/**
 * file bench: sends a 1 GiB file of random bytes over loopback to a
 * receiver writing to disk, `file_send` to `file_recv` (SHA-256 on both
 * sides, .part and rename), and compares it in the same run with ncat's
 * plain copy (`ncat -l > copy`, `ncat --send-only < big`, no hashing).
 * Twice: until the last byte is written (the page cache takes it), and
 * until the copy is flushed to disk (`file_recv --fsync`, `sync FILE`
 * after ncat). Rounds alternate; it prints the median wall time, the ratio
 * to ncat, and each side's CPU seconds per GiB (user + system: the
 * receiver's from /proc/PID/stat, each sender's and ncat's from its
 * shell's `times`), and checks every copy byte for byte (by SHA-256). It
 * also prints what SHA-256 alone costs per GiB on this CPU, the least each
 * netkit side can add to ncat's CPU time.
 *
 *     deno task bench file                 # 1 GiB, 3 rounds
 *     deno run -A bench/file_bench.ts --mib 256 --rounds 5
 *
 * The big files live in a temp folder on the same disk as the project and
 * are deleted at the end.
 *
 * @module
 */
import { createHash, randomFillSync } from "node:crypto";
import process from "node:process";
import { parseArgs } from "node:util";
import { ROOT, taskArgs } from "../tests/helpers.ts";
import { writeAll } from "../lib/io/lines.ts";
import { freePort, median, printTable, ratio, startNetkit } from "./yardsticks.ts";

const MIB = 1024 * 1024;
/** USER_HZ, the unit of /proc times: 100 on every Linux architecture netkit runs on. */
const CLOCK_TICKS = 100;

/** Where the big files go: /tmp when it is on the project's disk, else beside the project. */
function benchDir(): string {
  const sameDisk = Deno.statSync("/tmp").dev === Deno.statSync(ROOT).dev;
  return Deno.makeTempDirSync({
    dir: sameDisk ? "/tmp" : `${ROOT}..`,
    prefix: "netkit_file_bench_",
  });
}

/** Writes `mib` MiB of random bytes and returns their SHA-256. */
async function makeRandomFile(path: string, mib: number): Promise<string> {
  using file = await Deno.open(path, { write: true, create: true, truncate: true });
  const hash = createHash("sha256");
  const block = new Uint8Array(4 * MIB);
  for (let done = 0; done < mib; done += 4) {
    randomFillSync(block);
    const chunk = block.subarray(0, Math.min(4, mib - done) * MIB);
    hash.update(chunk);
    await writeAll(file, chunk);
  }
  return hash.digest("hex");
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  using file = await Deno.open(path);
  const buf = new Uint8Array(4 * MIB);
  for (let n = await file.read(buf); n !== null; n = await file.read(buf)) {
    hash.update(buf.subarray(0, n));
  }
  return hash.digest("hex");
}

/**
 * CPU seconds per GiB that SHA-256 alone costs on this machine (node:crypto,
 * 256 KiB updates, as both sides hash): the least each side adds to ncat's.
 */
function hashCpuPerGib(): number {
  const block = new Uint8Array(256 * 1024);
  const hash = createHash("sha256");
  const before = process.cpuUsage();
  for (let done = 0; done < 1024 * MIB; done += block.byteLength) hash.update(block);
  hash.digest();
  const used = process.cpuUsage(before);
  return (used.user + used.system) / 1e6;
}

/** Flushes dirty pages so that one run's writeback does not slow the next. */
async function sync(): Promise<void> {
  await new Deno.Command("sync").output();
}

/** CPU seconds (user + system) a live process has used, from /proc/PID/stat. */
function processCpu(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

/** A shell command's children's CPU seconds, from bash's `times` (its second line) on stderr. */
function parseTimes(stderr: string): number {
  const line = stderr.trimEnd().split("\n").at(-1) ?? "";
  const match = /^(\d+)m([\d.]+)s (\d+)m([\d.]+)s$/.exec(line);
  if (!match) throw new Error(`No times in: ${stderr}`);
  return Number(match[1]) * 60 + Number(match[2]) + Number(match[3]) * 60 + Number(match[4]);
}

/** Runs `script` in bash, then `times`; returns its children's CPU seconds. */
async function shTimed(script: string): Promise<number> {
  const { code, stderr } = await new Deno.Command("bash", {
    args: ["-c", `${script} && times >&2`],
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(stderr);
  if (code !== 0) throw new Error(`${script}: ${text}`);
  return parseTimes(text);
}

const quote = (word: string) => `'${word.replaceAll("'", `'\\''`)}'`;

/** Lets a listener started in the background bind its port. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 300));

/** One run: wall seconds, and the CPU seconds of the sending and the receiving side. */
interface Run {
  seconds: number;
  sendCpu: number;
  recvCpu: number;
}

/** Copies `big` over loopback to `dir/copy`; with `durable`, until it is on disk. */
type Contender = (big: string, dir: string, durable: boolean) => Promise<Run>;

const contenders: Record<string, Contender> = {
  "ncat (plain copy)": async (big, dir, durable) => {
    const port = freePort();
    const flush = durable ? ` && sync ${quote(`${dir}/copy`)}` : "";
    const receiving = shTimed(`ncat -l 127.0.0.1 ${port} > ${quote(`${dir}/copy`)}${flush}`);
    await settle();
    const start = performance.now();
    const sendCpu = await shTimed(`ncat --send-only 127.0.0.1 ${port} < ${quote(big)}`);
    const recvCpu = await receiving;
    return { seconds: (performance.now() - start) / 1000, sendCpu, recvCpu };
  },
  "netkit file_send -> file_recv": async (big, dir, durable) => {
    await Deno.mkdir(`${dir}/in`, { recursive: true });
    const args = ["127.0.0.1:0", "--dir", `${dir}/in`, "-q", ...(durable ? ["--fsync"] : [])];
    await using server = await startNetkit("file_recv", args);
    const pid = server.child.pid;
    const recvBefore = processCpu(pid);
    const send = ["deno", ...taskArgs("file_send"), `127.0.0.1:${server.port}`, big, "--as", "copy"]
      .map(quote).join(" ");
    const start = performance.now();
    const sendCpu = await shTimed(`cd ${quote(ROOT)} && ${send} -q > /dev/null`);
    const seconds = (performance.now() - start) / 1000;
    const recvCpu = processCpu(pid) - recvBefore;
    await Deno.rename(`${dir}/in/copy`, `${dir}/copy`);
    return { seconds, sendCpu, recvCpu };
  },
};

async function main(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { mib: { type: "string", default: "1024" }, rounds: { type: "string", default: "3" } },
  });
  const mib = Number(values.mib);
  const rounds = Number(values.rounds);
  const gib = mib / 1024;
  const names = Object.keys(contenders);
  const dir = benchDir();
  const big = `${dir}/big`;
  const modes = [false, true];
  const label = (name: string, durable: boolean) => `${name}${durable ? ", --fsync" : ""}`;
  const runs: Record<string, Run[]> = {};
  for (const durable of modes) for (const n of names) runs[label(n, durable)] = [];
  try {
    console.log(`Writing ${mib} MiB of random bytes to ${big} ...`);
    const digest = await makeRandomFile(big, mib);
    await sync();
    for (let round = 1; round <= rounds; round++) {
      for (const durable of modes) {
        // Alternate who goes first, so neither always follows the other's writeback.
        const order = round % 2 ? names : [...names].reverse();
        for (const name of order) {
          const run = await contenders[name](big, dir, durable);
          const copied = await sha256File(`${dir}/copy`);
          if (copied !== digest) throw new Error(`${name}: the copy differs (sha256 ${copied})`);
          await Deno.remove(`${dir}/copy`);
          runs[label(name, durable)].push(run);
          console.log(
            `round ${round}: ${label(name, durable)}: ${run.seconds.toFixed(2)} s, CPU ` +
              `sender ${run.sendCpu.toFixed(2)} s, receiver ${
                run.recvCpu.toFixed(2)
              } s; copy identical`,
          );
          await sync();
        }
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  const hashCpu = hashCpuPerGib();
  console.log(
    `SHA-256 alone (node:crypto, 256 KiB updates): ${hashCpu.toFixed(2)} CPU s/GiB on this ` +
      `machine, which each netkit side adds to ncat's copy`,
  );
  const load = Deno.loadavg().map((l) => l.toFixed(1)).join(" ");
  for (const durable of modes) {
    const base = median(runs[label(names[0], durable)].map((r) => r.seconds));
    printTable(
      `${mib} MiB over loopback to disk, ${
        durable ? "until flushed (--fsync; sync FILE after ncat)" : "until the last byte is written"
      }; median of ${rounds} alternating rounds (load average ${load}, shared machine)`,
      names.map((name) => {
        const rs = runs[label(name, durable)];
        const seconds = median(rs.map((r) => r.seconds));
        return {
          way: name,
          seconds: seconds.toFixed(2),
          "vs ncat": ratio(seconds, base),
          "MiB/s": (mib / seconds).toFixed(0),
          runs: rs.map((r) => r.seconds.toFixed(2)).join(" "),
          "sender CPU s/GiB": (median(rs.map((r) => r.sendCpu)) / gib).toFixed(2),
          "receiver CPU s/GiB": (median(rs.map((r) => r.recvCpu)) / gib).toFixed(2),
        };
      }),
    );
  }
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
