const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 } as const;

const DURATION = /^(\d{1,12}(?:\.\d{1,6})?)(ms|s|m|h|d|w)$/;

/**
 * Parses a duration like `15m` into whole milliseconds (rounded); units ms, s, m, h, d, w.
 * Throws a RangeError for anything else, so callers turn it into their own error.
 *
 * @example
 * parseDuration('15m'); // 900000
 * parseDuration('1.5s'); // 1500
 */
export function parseDuration(text: string): number {
  const match = DURATION.exec(text.trim());
  const unit = match?.[2] as keyof typeof UNIT_MS | undefined;
  if (match === null || unit === undefined) {
    throw new RangeError(`'${text}' is not a duration: use a number and one of ms, s, m, h, d, w (e.g. 15m)`);
  }
  return Math.round(Number(match[1]) * UNIT_MS[unit]);
}

/**
 * Formats milliseconds as the largest unit that divides them exactly.
 *
 * @example
 * formatDuration(900000); // '15m'
 */
export function formatDuration(ms: number): string {
  for (const unit of ['w', 'd', 'h', 'm', 's'] as const) {
    if (ms !== 0 && ms % UNIT_MS[unit] === 0) return `${ms / UNIT_MS[unit]}${unit}`;
  }
  return `${ms}ms`;
}
