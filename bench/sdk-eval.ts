/**
 * SDK evaluation benchmark: Rampart `isEnabled` against a hashing floor, Unleash and GrowthBook,
 * all measured in the same process on the same ids, reported as ratios (see bench/README.md).
 *
 * Run: npm run bench:sdk   (builds the SDK, then `node --expose-gc --import tsx bench/sdk-eval.ts`)
 * Exit code: 0 all good; 1 a contestant is wrong (fraction, disagreement, setup);
 *            2 isEnabled retains heap; 3 isEnabled/floor misses the goal.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import murmur from 'murmurhash-js';
import {
  floorContestant,
  growthBookContestant,
  growthBookPayload,
  rampartContestant,
  unleashConfig,
  unleashContestant,
} from './contestants.js';
import type { Contestant, FlagUnderTest } from './contestants.js';
import {
  bytesPerCall,
  fmtBytes,
  fmtInt,
  fmtNs,
  fmtPct,
  fmtRatio,
  measureRetainedHeap,
  median,
  requireGc,
  table,
  timeLoop,
} from './measure.js';
import type { RetainedHeap } from './measure.js';
import { generateUserIds, isAscii } from './user-ids.js';

const ID_COUNT = 1_000_000;
const ID_SEED = 20_240_601;
const CALLS = 2_000_000; // per contestant per round: two passes over the ids
const ROUNDS = 7;
const WARMUP_CALLS = 200_000;
const RETAINED_CALLS = 5_000_000;
const BYTES_BATCHES = 100;
const BYTES_BATCH_SIZE = 1_000;
const GOAL = 1.2; // isEnabled / floor
const RETAINED_LIMIT = 1024 * 1024;
const FRACTION_TOLERANCE = 0.005; // +-0.5 percentage points around the flag's percentage
const UNLEASH_READY_TIMEOUT_MS = 5_000;
const FLAG: FlagUnderTest = { key: 'new-checkout', percentage: 10 };

const gc = requireGc();
const failures: { code: number; message: string }[] = [];
const fail = (code: number, message: string): void => {
  failures.push({ code, message });
  console.log(`  FAIL: ${message}`);
};

// `@rampart/sdk` type-checks against sdk/src (the rampart-source condition in tsconfig), but Node
// resolves it without that condition, to the bundle `npm run build --workspace sdk` just wrote.
const rampartModule = import.meta.resolve('@rampart/sdk');
if (!rampartModule.endsWith('/sdk/dist/index.js')) {
  throw new Error(`@rampart/sdk resolved to ${rampartModule}, expected the built sdk/dist/index.js`);
}

console.log('Rampart SDK evaluation benchmark');
console.log(`node ${process.version} ${process.platform}/${process.arch}, ${cpus().length} CPUs (${cpus()[0]?.model ?? 'unknown'})`);
console.log(`@rampart/sdk -> ${rampartModule}`);

const generated = generateUserIds(ID_COUNT, ID_SEED);
const { ids } = generated;
console.log(
  `ids: ${fmtInt(ids.length)} distinct (${fmtInt(generated.sequential)} user-N, ${fmtInt(generated.uuidLike)} UUID-like, ` +
    `${fmtInt(generated.nonAscii)} non-ASCII); flag '${FLAG.key}' at ${FLAG.percentage}%, groupId = flag key`,
);
console.log(`timing: ${fmtInt(CALLS)} calls per contestant per round, ${ROUNDS} rounds interleaved, median reported\n`);

const contestants: Contestant[] = [
  floorContestant(FLAG),
  rampartContestant(FLAG),
  await unleashContestant(FLAG, UNLEASH_READY_TIMEOUT_MS),
  growthBookContestant(FLAG),
];
const [floor, rampart, unleash, growthbook] = contestants as [Contestant, Contestant, Contestant, Contestant];

// Nothing may have opened a socket or started a DNS lookup: evaluation is local for everyone.
// (PipeWrap entries are this process's own stdout/stderr when they are piped.)
const network = process.getActiveResourcesInfo().filter((r) => /TCP|UDP|GetAddrInfo|Connect/i.test(r));
if (network.length > 0) fail(1, `network resources are active: ${network.join(', ')}`);

// ---- Sanity: each contestant's answers over every id, once. ----------------------------------
console.log('Sanity: fraction enabled over all ids (expected about 10%)');
const answers = new Map<string, Uint8Array>();
const onCounts = new Map<string, number>();
const sanityRows: string[][] = [];
for (const c of contestants) {
  const out = new Uint8Array(ids.length);
  let on = 0;
  for (let i = 0; i < ids.length; i++) {
    if (c.check(ids[i]!)) {
      out[i] = 1;
      on++;
    }
  }
  answers.set(c.name, out);
  onCounts.set(c.name, on);
  const fraction = on / ids.length;
  const ok = Math.abs(fraction - FLAG.percentage / 100) <= FRACTION_TOLERANCE;
  sanityRows.push([c.name, fmtInt(on), fmtPct(fraction), ok ? 'ok' : 'OUT OF RANGE']);
  if (!ok) fail(1, `${c.name}: ${fmtPct(fraction)} enabled, expected ${FLAG.percentage}% +- ${FRACTION_TOLERANCE * 100} points`);
}
console.log(table(['contestant', 'enabled', 'fraction', ''], sanityRows, [false, true, true, false]));

// ---- Agreement with Unleash. -------------------------------------------------------------------
// Rampart hashes the UTF-8 bytes of groupId:userId. unleash-client (Node) hashes with murmurhash3js,
// which takes the low byte of each UTF-16 code unit: the same bytes for ASCII ids, different
// ones otherwise. So: Rampart must equal unleash-client on every ASCII id, equal Unleash's rule
// applied to UTF-8 bytes on every id, and unleash-client must equal its own low-byte rule (the
// floor's formula) on every id, which pins any non-ASCII difference on the encoding alone.
console.log('\nAgreement (disagreements must be 0 where marked "must be 0")');
const rampartOn = answers.get(rampart.name)!;
const unleashOn = answers.get(unleash.name)!;
const floorOn = answers.get(floor.name)!;
let asciiIds = 0;
let asciiDiff = 0;
let nonAsciiIds = 0;
let nonAsciiDiff = 0;
let utf8RuleDiff = 0;
let lowByteRuleDiff = 0;
for (let i = 0; i < ids.length; i++) {
  const id = ids[i]!;
  const differs = rampartOn[i] !== unleashOn[i];
  if (isAscii(id)) {
    asciiIds++;
    if (differs) asciiDiff++;
  } else {
    nonAsciiIds++;
    if (differs) nonAsciiDiff++;
  }
  const utf8Key = Buffer.from(`${FLAG.key}:${id}`, 'utf8').toString('latin1');
  const utf8Rule = murmur.murmur3(utf8Key, 0) % 100 < FLAG.percentage ? 1 : 0;
  if (rampartOn[i] !== utf8Rule) utf8RuleDiff++;
  if (unleashOn[i] !== floorOn[i]) lowByteRuleDiff++;
}
const agreementRows = [
  ['rampart vs unleash-client, ASCII ids', fmtInt(asciiIds), fmtInt(asciiDiff), 'must be 0'],
  ['rampart vs Unleash rule on UTF-8 bytes, all ids', fmtInt(ids.length), fmtInt(utf8RuleDiff), 'must be 0'],
  ['unleash-client vs its low-byte rule, all ids', fmtInt(ids.length), fmtInt(lowByteRuleDiff), 'must be 0'],
  ['rampart vs unleash-client, non-ASCII ids', fmtInt(nonAsciiIds), fmtInt(nonAsciiDiff), 'encoding (see README)'],
];
console.log(table(['comparison', 'ids', 'disagree', ''], agreementRows, [false, true, true, false]));
if (asciiDiff !== 0) fail(1, `rampart and unleash-client disagree on ${asciiDiff} ASCII ids`);
if (utf8RuleDiff !== 0) fail(1, `rampart disagrees with the UTF-8 Unleash rule on ${utf8RuleDiff} ids`);
if (lowByteRuleDiff !== 0) fail(1, `unleash-client disagrees with its own low-byte rule on ${lowByteRuleDiff} ids`);
answers.clear();

// ---- Timing. -------------------------------------------------------------------------------------
for (const c of contestants) {
  c.loop(ids, 0, WARMUP_CALLS);
  c.loop(ids, 0, WARMUP_CALLS);
}
const samples = new Map<string, number[]>(contestants.map((c) => [c.name, []]));
const passes = CALLS / ids.length;
// The order rotates every round, so no contestant always runs first or right after the
// heaviest; floor and isEnabled stay adjacent (their order alternating), so the goal ratio
// compares runs a fraction of a second apart, whatever the machine's load does meanwhile.
const groups: Contestant[][] = [[floor, rampart], [unleash], [growthbook]];
for (let round = 0; round < ROUNDS; round++) {
  const order = groups
    .map((_, j) => groups[(round + j) % groups.length]!)
    .flatMap((g) => (round % 2 === 1 ? [...g].reverse() : g));
  for (const c of order) {
    gc();
    const { nsPerCall, on } = timeLoop(c.loop, ids, CALLS);
    samples.get(c.name)!.push(nsPerCall);
    const expected = onCounts.get(c.name)! * passes;
    if (Number.isInteger(passes) && on !== expected) fail(1, `${c.name}: ${on} on in round ${round + 1}, expected ${expected}`);
  }
}
const medians = new Map(contestants.map((c) => [c.name, median(samples.get(c.name)!)]));
const med = (c: Contestant): number => medians.get(c.name)!;
console.log('\nTiming (ns per call; lower is better)');
console.log(
  table(
    ['contestant', 'median', 'min', 'max', 'rounds', 'call'],
    contestants.map((c) => {
      const s = samples.get(c.name)!;
      return [c.name, fmtNs(med(c)), fmtNs(Math.min(...s)), fmtNs(Math.max(...s)), s.map(fmtNs).join(' '), c.call];
    }),
    [false, true, true, true, false, false],
  ),
);

interface Ratio {
  readonly name: string;
  /** Ratio of the two medians: the headline. */
  readonly value: number;
  /** The same ratio within each round: its median, minimum and maximum show the noise. */
  readonly perRound: readonly number[];
}
const label = (c: Contestant): string => (c === rampart ? 'isEnabled' : c.name);
const ratio = (a: Contestant, b: Contestant): Ratio => {
  const rb = samples.get(b.name)!;
  return {
    name: `${label(a)} / ${label(b)}`,
    value: med(a) / med(b),
    perRound: samples.get(a.name)!.map((v, i) => v / rb[i]!),
  };
};
const ratios = [ratio(rampart, floor), ratio(unleash, rampart), ratio(growthbook, rampart)];
console.log('\nRatios (of the medians; the same ratio within each round alongside)');
console.log(
  table(
    ['ratio', 'value', 'per-round median [min .. max]', 'meaning'],
    ratios.map((r, i) => [
      r.name,
      fmtRatio(r.value),
      `${fmtRatio(median(r.perRound))} [${fmtRatio(Math.min(...r.perRound))} .. ${fmtRatio(Math.max(...r.perRound))}]`,
      ['goal <= 1.2x; below 1 means cheaper than building the key and hashing it', 'how many times slower Unleash is', 'how many times slower GrowthBook is'][i]!,
    ]),
    [false, true, true, false],
  ),
);

// ---- Allocation. -------------------------------------------------------------------------------
console.log('\nAllocation');
const perCall = new Map(
  contestants.map((c) => [c.name, bytesPerCall(gc, c.loop, ids, BYTES_BATCHES, BYTES_BATCH_SIZE)]),
);
console.log(
  table(
    ['contestant', 'bytes/call (incl. garbage)'],
    contestants.map((c) => [c.name, perCall.get(c.name)!.toFixed(1)]),
    [false, true],
  ),
);
const retained = new Map<string, RetainedHeap>();
for (const c of [rampart, floor]) retained.set(c.name, await measureRetainedHeap(gc, c.loop, ids, RETAINED_CALLS));
console.log('');
console.log(
  table(
    ['contestant', 'calls', 'heap before', 'heap after', 'retained delta', 'GCs during calls'],
    [rampart, floor].map((c) => {
      const r = retained.get(c.name)!;
      return [c.name, fmtInt(r.calls), fmtBytes(r.heapBefore), fmtBytes(r.heapAfter), fmtBytes(r.delta), fmtInt(r.gcRuns)];
    }),
    [false, true, true, true, true, true],
  ),
);
const rampartRetained = retained.get(rampart.name)!;
if (rampartRetained.delta > RETAINED_LIMIT) {
  fail(2, `isEnabled retained ${fmtBytes(rampartRetained.delta)} over ${fmtInt(RETAINED_CALLS)} calls (limit ${fmtBytes(RETAINED_LIMIT)})`);
}

for (const c of contestants) {
  try {
    c.close();
  } catch (error) {
    fail(1, `${c.name}: ${error instanceof Error ? error.message : String(error)}`);
  }
}

// ---- Verdict. ------------------------------------------------------------------------------------
const goalRatio = ratios[0]!.value;
const goalPass = goalRatio <= GOAL;
if (!goalPass) failures.push({ code: 3, message: `isEnabled/floor ${fmtRatio(goalRatio)} > ${fmtRatio(GOAL)}` });

const results = {
  date: new Date().toISOString(),
  node: process.version,
  platform: `${process.platform}/${process.arch}`,
  cpus: cpus().length,
  cpuModel: cpus()[0]?.model ?? 'unknown',
  rampartModule,
  flag: FLAG,
  ids: { count: ids.length, seed: ID_SEED, sequential: generated.sequential, uuidLike: generated.uuidLike, nonAscii: generated.nonAscii },
  callsPerRound: CALLS,
  rounds: ROUNDS,
  options: {
    unleash: { ...unleashConfig(FLAG), storageProvider: 'InMemStorageProvider' },
    growthbook: { client: 'GrowthBookClient', init: 'initSync', payload: growthBookPayload(FLAG) },
  },
  sanity: Object.fromEntries(contestants.map((c) => [c.name, { on: onCounts.get(c.name)!, fraction: onCounts.get(c.name)! / ids.length }])),
  agreement: { asciiIds, asciiDiff, nonAsciiIds, nonAsciiDiff, utf8RuleDiff, lowByteRuleDiff },
  timing: Object.fromEntries(contestants.map((c) => [c.name, { call: c.call, medianNs: med(c), roundsNs: samples.get(c.name)! }])),
  ratios: Object.fromEntries(ratios.map((r) => [r.name, { value: r.value, perRound: r.perRound }])),
  allocation: {
    bytesPerCall: Object.fromEntries(perCall),
    retained: Object.fromEntries(retained),
  },
  goal: { metric: 'isEnabled / floor', value: goalRatio, limit: GOAL, pass: goalPass },
  failures,
};
const resultsDir = new URL('./results/', import.meta.url);
mkdirSync(resultsDir, { recursive: true });
const resultsFile = new URL('sdk-eval.json', resultsDir);
writeFileSync(resultsFile, `${JSON.stringify(results, null, 2)}\n`);
console.log(`\nresults: ${resultsFile.pathname}`);

for (const f of failures) console.log(`FAIL (exit ${f.code}): ${f.message}`);
console.log(`GOAL isEnabled/floor = ${fmtRatio(goalRatio)} (goal <= ${GOAL}x): ${goalPass ? 'PASS' : 'FAIL'}`);
process.exitCode = failures.length === 0 ? 0 : Math.min(...failures.map((f) => f.code));
