// Rampart against the Unleash client specification: every applicable case, mapped to a Rampart
// flag (see test/support/unleash-conformance.ts), must evaluate to Unleash's expected result.
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { evaluate } from '@rampart/sdk';
import type { FlagSnapshot } from '@rampart/sdk';
import { FIXTURE_PATH, SHARED_DIR, buildFixture, mapCase, readSpecFiles } from '../support/unleash-conformance.js';
import type { ConformanceFixture } from '../support/unleash-conformance.js';

const fixture = JSON.parse(readFileSync(FIXTURE_PATH, 'utf8')) as ConformanceFixture;
const title = (c: { readonly file: string; readonly description: string }): string => `${c.file.replace(/\.json$/, '')}: ${c.description}`;

describe('Unleash client specification (test/fixtures/unleash-conformance.json)', () => {
  it('holds the applicable cases of all four spec files and names its source', () => {
    expect(fixture.cases.length).toBeGreaterThanOrEqual(20);
    expect(new Set(fixture.cases.map((c) => c.file)).size).toBe(4);
    expect(fixture.source).toContain('github.com/Unleash/client-specification');
  });

  it.each(fixture.cases.map((c) => [title(c), c] as const))('%s', (_title, c) => {
    const snapshot: FlagSnapshot = { revision: 1, flags: { [c.toggleName]: c.flag } };
    const result = evaluate(snapshot, c.toggleName, c.rampartContext, false);
    expect(result.value).toBe(c.expectedResult);
    // Where Unleash says false for lack of the stickiness field, Rampart says "use your default".
    if (!Object.hasOwn(c.rampartContext, c.flag.stickiness ?? 'userId') && c.flag.percentage > 0) {
      expect(result).toMatchObject({ reason: 'DEFAULT', errorCode: 'TARGETING_KEY_MISSING' });
    }
  });

  it('maps the stored Unleash strategy and context of every case to the stored Rampart flag and context', () => {
    for (const c of fixture.cases) {
      const mapped = mapCase({ name: c.toggleName, enabled: c.enabled, strategies: [c.strategy] }, c.context);
      expect(mapped, title(c)).toEqual({ applicable: true, flag: c.flag, rampartContext: c.rampartContext });
    }
  });

  it('flattens context.properties so a custom stickiness field is found at the top level', () => {
    const custom = fixture.cases.filter((c) => c.flag.stickiness === 'customField' && c.context.properties !== undefined);
    expect(custom.length).toBeGreaterThan(0);
    for (const c of custom) expect(c.rampartContext.customField).toBe(c.context.properties?.customField);
  });

  it('lists D3, D4 (a second "default" strategy) and random stickiness as not applicable, with reasons', () => {
    const reasons = new Map(fixture.notApplicable.map((c) => [`${c.toggleName} ${c.description}`, c.reason]));
    expect([...reasons.keys()].filter((k) => k.startsWith('Feature.D3') || k.startsWith('Feature.D4'))).toHaveLength(2);
    expect(reasons.get('Feature.flexibleRollout.100 Feature.flexibleRollout.100 should always be enabled')).toMatch(/random/);
    for (const c of fixture.notApplicable) expect(c.reason).not.toBe('');
  });

  it.skipIf(!existsSync(SHARED_DIR))('matches the spec files in ../shared/conformance/unleash exactly', () => {
    expect(buildFixture(readSpecFiles(SHARED_DIR))).toEqual(fixture);
  });
});
