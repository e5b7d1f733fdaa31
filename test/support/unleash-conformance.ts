// Maps cases of the Unleash client specification to Rampart flags and contexts, and builds
// test/fixtures/unleash-conformance.json from the spec files in ../shared/conformance/unleash:
//   node --import tsx test/support/unleash-conformance.ts
// test/sdk/unleash-conformance.test.ts runs the fixture and checks it still matches the spec files.
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { FlagConfig } from '@rampart/sdk';

export interface UnleashStrategy {
  readonly name: string;
  readonly parameters?: Readonly<Record<string, string>>;
  readonly constraints?: readonly unknown[];
}

export interface UnleashFeature {
  readonly name: string;
  readonly enabled: boolean;
  readonly strategies: readonly UnleashStrategy[];
}

export interface UnleashContext {
  readonly properties?: Readonly<Record<string, string>>;
  readonly [field: string]: unknown;
}

export interface UnleashTest {
  readonly description: string;
  readonly context: UnleashContext;
  readonly toggleName: string;
  readonly expectedResult: unknown;
}

export interface UnleashSpecFile {
  readonly name: string;
  readonly state: { readonly features: readonly UnleashFeature[] };
  readonly tests: readonly UnleashTest[];
  readonly variantTests?: readonly UnleashTest[];
}

/** One applicable case: the Unleash inputs as published, and the Rampart inputs they map to. */
export interface ConformanceCase {
  readonly file: string;
  readonly description: string;
  readonly toggleName: string;
  readonly enabled: boolean;
  readonly strategy: UnleashStrategy;
  readonly context: UnleashContext;
  readonly expectedResult: boolean;
  readonly flag: FlagConfig;
  readonly rampartContext: Readonly<Record<string, unknown>>;
}

export interface NotApplicableCase {
  readonly file: string;
  readonly description: string;
  readonly toggleName: string;
  readonly reason: string;
}

export interface ConformanceFixture {
  readonly description: string;
  readonly source: string;
  readonly mapping: readonly string[];
  readonly cases: readonly ConformanceCase[];
  readonly notApplicable: readonly NotApplicableCase[];
}

export type Mapped =
  | { readonly applicable: true; readonly flag: FlagConfig; readonly rampartContext: Record<string, unknown> }
  | { readonly applicable: false; readonly reason: string };

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** The shared spec files, resolved from the repo root. */
export const SHARED_DIR = resolve(ROOT, '../shared/conformance/unleash');
export const FIXTURE_PATH = join(ROOT, 'test/fixtures/unleash-conformance.json');

const SOURCE =
  'Unleash client specification, github.com/Unleash/client-specification, commit 931b695b2a9911e1ab46a03516566e8da09dd6ec, ' +
  'folder specifications/, files 03-gradual-rollout-user-id-strategy.json, 04-gradual-rollout-session-id-strategy.json, ' +
  '10-flexible-rollout-strategy.json, 12-custom-stickiness.json (copied from ../shared/conformance/unleash).';

const MAPPING = [
  'gradualRolloutUserId -> stickiness "userId"; gradualRolloutSessionId -> stickiness "sessionId"; flexibleRollout with stickiness X -> stickiness X.',
  'flexibleRollout stickiness "default" (Unleash: userId, else sessionId, else random) -> "userId" when the case has a userId, "sessionId" when it has only a sessionId; with neither it is random: not applicable.',
  'percentage = Number(parameters.percentage ?? parameters.rollout); groupId = parameters.groupId, else what Unleash uses: the feature name for flexibleRollout, "" for gradualRollout*.',
  'context.properties are flattened into the Rampart context next to userId, sessionId, etc.',
  'Evaluated with evaluate(snapshot, toggleName, rampartContext) and defaultValue false. Where Unleash says false because the stickiness field is missing, Rampart resolves to the default (false) with reason DEFAULT / TARGETING_KEY_MISSING.',
];

const nonEmpty = (value: unknown): value is string => typeof value === 'string' && value !== '';

/** Flattens context.properties into the context, as Rampart contexts are flat. */
export function flattenContext(context: UnleashContext): Record<string, unknown> {
  const { properties, ...fields } = context;
  return { ...fields, ...properties };
}

/** Maps one feature and one context to a Rampart flag and context, or says why it cannot. */
export function mapCase(feature: UnleashFeature, context: UnleashContext): Mapped {
  const [strategy, ...others] = feature.strategies;
  if (strategy === undefined) return { applicable: false, reason: 'feature has no strategy' };
  if (others.length > 0) {
    return {
      applicable: false,
      reason: `feature has ${feature.strategies.length} strategies (${feature.strategies.map((s) => s.name).join(' + ')}): a Rampart flag has exactly one percentage rollout`,
    };
  }
  if ((strategy.constraints ?? []).length > 0) return { applicable: false, reason: 'strategy constraints: Rampart has no constraints' };
  const parameters = strategy.parameters ?? {};
  let stickiness: string;
  let defaultGroupId: string;
  switch (strategy.name) {
    case 'gradualRolloutUserId':
      stickiness = 'userId';
      defaultGroupId = '';
      break;
    case 'gradualRolloutSessionId':
      stickiness = 'sessionId';
      defaultGroupId = '';
      break;
    case 'flexibleRollout': {
      defaultGroupId = feature.name;
      const requested = parameters.stickiness ?? 'default';
      if (requested === 'random') return { applicable: false, reason: 'random stickiness: no stable unit id' };
      if (requested === 'default') {
        if (nonEmpty(context.userId)) stickiness = 'userId';
        else if (nonEmpty(context.sessionId)) stickiness = 'sessionId';
        else return { applicable: false, reason: 'default stickiness with neither userId nor sessionId: Unleash falls back to random' };
      } else {
        stickiness = requested;
      }
      break;
    }
    default:
      return { applicable: false, reason: `strategy ${strategy.name} has no Rampart equivalent` };
  }
  const percentage = Number(parameters.percentage ?? parameters.rollout);
  if (!Number.isFinite(percentage)) return { applicable: false, reason: 'no numeric percentage' };
  const groupId = nonEmpty(parameters.groupId) ? parameters.groupId : defaultGroupId;
  return {
    applicable: true,
    flag: { enabled: feature.enabled, percentage, groupId, stickiness },
    rampartContext: flattenContext(context),
  };
}

/** Reads the spec files (sorted by name) from a folder. */
export function readSpecFiles(dir: string): { readonly file: string; readonly spec: UnleashSpecFile }[] {
  return readdirSync(dir)
    .filter((file) => file.endsWith('.json'))
    .sort()
    .map((file) => ({ file, spec: JSON.parse(readFileSync(join(dir, file), 'utf8')) as UnleashSpecFile }));
}

/** Builds the fixture: every test of every spec file, as an applicable case or with a reason. */
export function buildFixture(files: readonly { readonly file: string; readonly spec: UnleashSpecFile }[]): ConformanceFixture {
  const cases: ConformanceCase[] = [];
  const notApplicable: NotApplicableCase[] = [];
  for (const { file, spec } of files) {
    for (const test of spec.tests) {
      const base = { file, description: test.description, toggleName: test.toggleName };
      const feature = spec.state.features.find((f) => f.name === test.toggleName);
      if (feature === undefined) {
        notApplicable.push({ ...base, reason: 'toggle not in the state' });
        continue;
      }
      const mapped = mapCase(feature, test.context);
      if (!mapped.applicable) {
        notApplicable.push({ ...base, reason: mapped.reason });
        continue;
      }
      if (typeof test.expectedResult !== 'boolean') throw new Error(`${file}: "${test.description}" expects a non-boolean`);
      cases.push({
        ...base,
        enabled: feature.enabled,
        strategy: feature.strategies[0]!,
        context: test.context,
        expectedResult: test.expectedResult,
        flag: mapped.flag,
        rampartContext: mapped.rampartContext,
      });
    }
    for (const test of spec.variantTests ?? []) {
      notApplicable.push({ file, description: test.description, toggleName: test.toggleName, reason: 'variant selection: Rampart flags have no variants' });
    }
  }
  return {
    description:
      'Cases of the Unleash client specification that apply to Rampart bucketing, with the Rampart flag and context each maps to, ' +
      'and the cases that do not apply with the reason. Built by test/support/unleash-conformance.ts; run by test/sdk/unleash-conformance.test.ts.',
    source: SOURCE,
    mapping: MAPPING,
    cases,
    notApplicable,
  };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  writeFileSync(FIXTURE_PATH, `${JSON.stringify(buildFixture(readSpecFiles(SHARED_DIR)), null, 2)}\n`);
  process.stdout.write(`wrote ${FIXTURE_PATH}\n`);
}
