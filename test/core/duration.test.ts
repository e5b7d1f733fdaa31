import { describe, expect, it } from 'vitest';
import { formatDuration, parseDuration } from '../../src/core/duration.js';

describe('parseDuration', () => {
  it.each([
    ['250ms', 250],
    ['30s', 30_000],
    ['15m', 900_000],
    ['1.5h', 5_400_000],
    ['2d', 172_800_000],
    ['1w', 604_800_000],
    ['0s', 0],
    [' 15m ', 900_000],
  ])('reads %s as %d ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each(['', '15', 'm', '15y', '-5m', '1e3s', '15 m', '15M', '1.1234567s'])('throws a RangeError for %j', (text) => {
    expect(() => parseDuration(text)).toThrow(RangeError);
  });
});

describe('formatDuration', () => {
  it.each([
    [900_000, '15m'],
    [172_800_000, '2d'],
    [1500, '1500ms'],
    [0, '0ms'],
  ])('writes %d ms as %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });
});
