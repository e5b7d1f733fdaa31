import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';

describe('guard configuration', () => {
  it('has defaults for the guard variables', () => {
    expect(loadConfig({})).toMatchObject({ guard: true, guardIntervalMs: 1000, guardLeaseTtlMs: 15_000, guardSourceTimeoutMs: 5000, notifyTimeoutMs: 2000 });
  });

  it('parses durations and RAMPART_GUARD=off', () => {
    expect(loadConfig({ RAMPART_GUARD: 'off', RAMPART_GUARD_INTERVAL: '200ms', RAMPART_GUARD_LEASE_TTL: '1s' })).toMatchObject({ guard: false, guardIntervalMs: 200, guardLeaseTtlMs: 1000 });
  });

  it('refuses a bad duration and a lease that would expire between renewals, naming the variable', () => {
    expect(() => loadConfig({ RAMPART_GUARD_INTERVAL: 'soon' })).toThrow(/RAMPART_GUARD_INTERVAL/);
    expect(() => loadConfig({ RAMPART_GUARD_INTERVAL: '5s', RAMPART_GUARD_LEASE_TTL: '10s' })).toThrow(ConfigError);
    expect(() => loadConfig({ RAMPART_GUARD_INTERVAL: '5s', RAMPART_GUARD_LEASE_TTL: '10s' })).toThrow(/RAMPART_GUARD_LEASE_TTL/);
  });
});
