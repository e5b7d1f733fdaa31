import { CronExpressionParser } from 'cron-parser';

/**
 * The latest cron time at or before `now` in `timezone` (ms since epoch), or undefined when the
 * expression has none (or cannot be evaluated, which the plan schema already rules out).
 *
 * @example
 * latestSlot('0 10 * * 1', 'Europe/Berlin', Date.parse('2026-11-25T12:00:00Z')); // Mon 2026-11-23 09:00 UTC
 */
export function latestSlot(cron: string, timezone: string, now: number): number | undefined {
  try {
    // currentDate one second on, so a slot exactly at `now` counts as come.
    return CronExpressionParser.parse(cron, { currentDate: new Date(now + 1000), tz: timezone }).prev().getTime();
  } catch {
    return undefined;
  }
}
