// Resident memory of a child process, read from /proc (Linux), for the fault tests' memory bounds.
import { readFileSync } from 'node:fs';

/**
 * Resident set size of `pid` in bytes (VmRSS of /proc/<pid>/status).
 *
 * @example
 * const bytes = rssBytes(server.process.pid!);
 */
export function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
  if (match?.[1] === undefined) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(match[1]) * 1024;
}

/** Periodic RSS readings of one process. */
export interface RssSampler {
  /** Every reading so far, in bytes. */
  readonly readings: readonly number[];
  /** Stops sampling and returns the largest reading (bytes). */
  stop(): number;
}

/**
 * Reads the RSS of `pid` now and every `everyMs`, until stopped (or the process is gone).
 *
 * @example
 * const rss = sampleRss(pid, 200); ...; const peak = rss.stop();
 */
export function sampleRss(pid: number, everyMs: number): RssSampler {
  const readings: number[] = [rssBytes(pid)];
  const timer = setInterval(() => {
    try {
      readings.push(rssBytes(pid));
    } catch {
      clearInterval(timer);
    }
  }, everyMs);
  return {
    readings,
    stop() {
      clearInterval(timer);
      return Math.max(...readings);
    },
  };
}
