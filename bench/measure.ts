/** Timing, heap and formatting helpers for the benchmarks. They need `node --expose-gc`. */
import { PerformanceObserver, performance } from 'node:perf_hooks';
import { getHeapStatistics } from 'node:v8';

/** A loop under test: `calls` evaluations from index `start`; returns how many were on. */
export type Loop = (ids: readonly string[], start: number, calls: number) => number;

/** The global `gc` that `--expose-gc` installs, or a clear error without it. */
export function requireGc(): () => void {
  const collect = globalThis.gc;
  if (collect === undefined) throw new Error('run with `node --expose-gc` (npm run bench:sdk does)');
  return () => {
    collect();
  };
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Times one run of `loop`; returns ns per call and the on-count (which also defeats DCE). */
export function timeLoop(loop: Loop, ids: readonly string[], calls: number): { nsPerCall: number; on: number } {
  const t0 = process.hrtime.bigint();
  const on = loop(ids, 0, calls);
  const elapsed = process.hrtime.bigint() - t0;
  return { nsPerCall: Number(elapsed) / calls, on };
}

/** Heap in use after two full collections (the second catches what the first's finalizers freed). */
export function heapAfterGc(gc: () => void): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

/** What a long run of `loop` leaves behind and how often the GC had to run during it. */
export interface RetainedHeap {
  readonly calls: number;
  readonly heapBefore: number;
  readonly heapAfter: number;
  /** Heap growth after full GC: what the calls retained. */
  readonly delta: number;
  /** Collections (mostly scavenges) that ran during the calls: a sign of per-call garbage. */
  readonly gcRuns: number;
}

/** Runs `loop` `calls` times between two post-GC heap readings, counting collections in between. */
export async function measureRetainedHeap(
  gc: () => void,
  loop: Loop,
  ids: readonly string[],
  calls: number,
): Promise<RetainedHeap> {
  const starts: number[] = [];
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) starts.push(entry.startTime);
  });
  observer.observe({ entryTypes: ['gc'] });
  const heapBefore = heapAfterGc(gc);
  const from = performance.now();
  loop(ids, 0, calls);
  const to = performance.now();
  const heapAfter = heapAfterGc(gc);
  // GC entries are delivered asynchronously; let them arrive before counting.
  await new Promise((resolve) => setImmediate(resolve));
  await new Promise((resolve) => setTimeout(resolve, 20));
  observer.disconnect();
  const gcRuns = starts.filter((t) => t >= from && t <= to).length;
  return { calls, heapBefore, heapAfter, delta: heapAfter - heapBefore, gcRuns };
}

/**
 * Bytes allocated per call, garbage included: V8's used-heap counter read around small batches.
 * Batches during which a collection ran (the counter went down) are skipped, and the counter's
 * own cost, measured on empty batches, is subtracted.
 */
export function bytesPerCall(gc: () => void, loop: Loop, ids: readonly string[], batches: number, batchSize: number): number {
  const sample = (size: number): { bytes: number; calls: number } => {
    gc();
    let bytes = 0;
    let counted = 0;
    for (let b = 0; b < batches; b++) {
      const before = getHeapStatistics().used_heap_size;
      loop(ids, b * size, size);
      const after = getHeapStatistics().used_heap_size;
      if (after >= before) {
        bytes += after - before;
        counted++;
      }
    }
    return { bytes, calls: counted };
  };
  const empty = sample(0);
  const overheadPerBatch = empty.calls === 0 ? 0 : empty.bytes / empty.calls;
  const full = sample(batchSize);
  if (full.calls === 0) return Number.NaN;
  return Math.max(0, (full.bytes / full.calls - overheadPerBatch) / batchSize);
}

/** Right-aligns (numbers) or left-aligns (text) cells into a plain-text table. */
export function table(header: readonly string[], rows: readonly (readonly string[])[], numeric: readonly boolean[]): string {
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]!.length)));
  const line = (cells: readonly string[]): string =>
    cells.map((cell, c) => (numeric[c] === true ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!))).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

export const fmtInt = (n: number): string => n.toLocaleString('en-US');
export const fmtNs = (n: number): string => n.toFixed(1);
export const fmtRatio = (n: number): string => `${n.toFixed(2)}x`;
export const fmtPct = (n: number): string => `${(n * 100).toFixed(3)}%`;
export const fmtBytes = (n: number): string => {
  const abs = Math.abs(n);
  if (abs >= 1024 * 1024) return `${(n / 1024 / 1024).toFixed(2)} MB`;
  if (abs >= 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${n} B`;
};
