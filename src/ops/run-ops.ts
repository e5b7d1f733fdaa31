// `rampart flags ...` and `rampart rollout ...`: a thin client of the HTTP API for people and
// scripts. Tables by default, the API's own JSON with --json, exit codes from exit-codes.ts.
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import type { z } from 'zod';
import { createApiClient, OpsError } from './api-client.js';
import type { ApiClient } from './api-client.js';
import { EXIT } from './exit-codes.js';
import { decisionPageSchema, flagListSchema, flagSchema, formatDecisions, formatFlag, formatFlagList, formatHistory, formatRollout, historyPageSchema, rolloutStatus } from './format.js';
import type { OpsFlag } from './format.js';

/** Where the ops commands read their environment and write their output. */
export interface OpsIo {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly stdout: (s: string) => void;
  readonly stderr: (s: string) => void;
  /** Default: the global fetch. */
  readonly fetch?: typeof fetch;
  /** Asks a yes/no question; absent when nobody can answer (not a terminal), then nothing is asked. */
  readonly confirm?: (question: string) => Promise<boolean>;
}

/** The top-level commands runOps handles; the CLI routes these to it. */
export const OPS_COMMANDS = ['flags', 'rollout'] as const;

export const DEFAULT_URL = 'http://127.0.0.1:8080';
export const DEFAULT_MAX_STEP = 50;
export const DEFAULT_TIMEOUT_S = 10;

/** Usage of the ops commands, for `rampart --help`. */
export const OPS_USAGE = `Flag commands (RAMPART_URL, default ${DEFAULT_URL}; RAMPART_TOKEN):
  flags list                          every flag
  flags get <key>                     one flag
  flags set <key> <percentage>        change the rollout percentage (step guard: --max-step, --force)
  flags on <key>                      turn the master toggle on
  flags off <key>                     kill switch: turn the flag off now, no questions
  flags history <key>                 who changed what, newest first (--limit, --before)
  rollout start <key> --plan <file>   hand the flag to the guard with a rollout plan
  rollout status <key>                where the plan is
  rollout decisions <key>             what the guard and people decided, newest first (--limit, --before)
  rollout approve|pause|resume|abort <key>

Options: --json (raw API JSON), --reason <text> (writes), --timeout <seconds> (default ${DEFAULT_TIMEOUT_S}),
  --url <url>, --yes (answer confirmations), --help
Exit codes: 0 ok, 1 unexpected, 2 usage, 3 auth (401/403), 4 not found, 5 conflict (409/412),
  6 validation (400/413/415), 7 unavailable (network, timeout, 429, 5xx), 8 refused locally
`;

const OPTIONS = {
  json: { type: 'boolean' },
  url: { type: 'string' },
  timeout: { type: 'string' },
  reason: { type: 'string' },
  force: { type: 'boolean' },
  'max-step': { type: 'string' },
  'if-match': { type: 'string' },
  plan: { type: 'string' },
  yes: { type: 'boolean', short: 'y' },
  limit: { type: 'string' },
  before: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

type OptionName = keyof typeof OPTIONS;
type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true; strict: true }>>['values'];

const COMMON: readonly OptionName[] = ['json', 'url', 'timeout', 'help'];

interface Command {
  readonly args: readonly string[];
  readonly options: readonly OptionName[];
  readonly run: (ctx: Context, args: readonly string[]) => Promise<number>;
}

interface Context {
  readonly api: ApiClient;
  readonly values: Values;
  readonly io: OpsIo;
  readonly json: boolean;
}

const usageError = (message: string): OpsError => new OpsError(EXIT.usage, message, ['run `rampart flags --help` for usage']);

const enc = encodeURIComponent;

function parse<T>(schema: z.ZodType<T>, body: unknown, what: string): T {
  const result = schema.safeParse(body);
  if (!result.success) throw new OpsError(EXIT.error, `unexpected ${what} from the server: ${result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return result.data;
}

function print(ctx: Context, body: unknown, human: () => string): void {
  ctx.io.stdout(ctx.json ? `${JSON.stringify(body, null, 2)}\n` : human());
}

function reasonHeader(values: Values): Record<string, string> {
  return values.reason === undefined ? {} : { 'x-change-reason': values.reason };
}

function maxStep(values: Values, env: OpsIo['env']): number {
  const raw = values['max-step'] ?? env.RAMPART_MAX_STEP;
  if (raw === undefined || raw === '') return DEFAULT_MAX_STEP;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0 || n > 100) {
    throw usageError(`${values['max-step'] === undefined ? 'RAMPART_MAX_STEP' : '--max-step'} must be a number of percentage points above 0 and at most 100, got '${raw}'`);
  }
  return n;
}

function pageQuery(values: Values): string {
  const query = new URLSearchParams();
  if (values.limit !== undefined) query.set('limit', values.limit);
  if (values.before !== undefined) query.set('before', values.before);
  return query.size === 0 ? '' : `?${query.toString()}`;
}

async function getFlag(ctx: Context, key: string): Promise<OpsFlag> {
  const { body } = await ctx.api.request('GET', `/flags/${enc(key)}`);
  return parse(flagSchema, body, 'flag');
}

/** The rollout status of a flag, or undefined when it has no plan (404). */
async function activeRollout(ctx: Context, key: string): Promise<string | undefined> {
  try {
    const { body } = await ctx.api.request('GET', `/flags/${enc(key)}/rollout`);
    return rolloutStatus(body);
  } catch (error) {
    if (error instanceof OpsError && error.exitCode === EXIT.notFound) return undefined;
    const message = error instanceof Error ? error.message : String(error);
    ctx.io.stderr(`warning: could not check for a rollout plan on '${key}' (${message}); going on\n`);
    return undefined;
  }
}

async function patchFlag(ctx: Context, key: string, patch: Record<string, unknown>, version: number | undefined): Promise<OpsFlag> {
  const headers = { ...reasonHeader(ctx.values), ...(version === undefined ? {} : { 'if-match': `"${version}"` }) };
  const { body } = await ctx.api.request('PATCH', `/flags/${enc(key)}`, { body: patch, headers });
  const flag = parse(flagSchema, body, 'flag');
  print(ctx, body, () => formatFlag(flag));
  return flag;
}

const flagCommands: Record<string, Command> = {
  list: {
    args: [],
    options: COMMON,
    async run(ctx) {
      const { body } = await ctx.api.request('GET', '/flags');
      const list = parse(flagListSchema, body, 'flag list');
      print(ctx, body, () => formatFlagList(list));
      return EXIT.ok;
    },
  },
  get: {
    args: ['key'],
    options: COMMON,
    async run(ctx, [key = '']) {
      const { body } = await ctx.api.request('GET', `/flags/${enc(key)}`);
      const flag = parse(flagSchema, body, 'flag');
      print(ctx, body, () => formatFlag(flag));
      return EXIT.ok;
    },
  },
  set: {
    args: ['key', 'percentage'],
    options: [...COMMON, 'reason', 'force', 'max-step', 'if-match', 'yes'],
    async run(ctx, [key = '', raw = '']) {
      const step = maxStep(ctx.values, ctx.io.env);
      const target = raw.trim() === '' ? Number.NaN : Number(raw);
      if (!Number.isFinite(target)) {
        throw new OpsError(EXIT.validation, `invalid percentage '${raw}': it must be a number from 0 to 100 with at most 3 decimals (e.g. 12.5)`);
      }
      const current = await getFlag(ctx, key);
      const pinned = ctx.values['if-match'];
      let version = current.version;
      if (pinned !== undefined) {
        version = Number(pinned.replace(/"/g, ''));
        if (!Number.isInteger(version) || version < 1) throw usageError(`--if-match must be a flag version such as 3, got '${pinned}'`);
      }
      const jump = Math.abs(target - current.percentage);
      // Out-of-range values go to the server, which names the rule; the guard is for real jumps.
      if (target >= 0 && target <= 100 && jump > step && ctx.values.force !== true) {
        throw new OpsError(
          EXIT.refused,
          `refusing to move '${key}' from ${current.percentage}% to ${target}%: a jump of ${Math.round(jump * 1000) / 1000} points is more than the ${step}-point step limit`,
          ['ramp in smaller steps, raise the limit (--max-step N or RAMPART_MAX_STEP), or pass --force', 'nothing was changed'],
        );
      }
      const status = await activeRollout(ctx, key);
      if (status === 'running' || status === 'awaiting-approval') {
        ctx.io.stderr(`warning: a guard rollout plan is ${status} on '${key}'; the change would pause it (resume with: rampart rollout resume ${key})\n`);
        if (ctx.io.confirm !== undefined && ctx.values.yes !== true && !(await ctx.io.confirm(`Set '${key}' to ${target}% anyway?`))) {
          throw new OpsError(EXIT.refused, 'not changed (declined)');
        }
      }
      await patchFlag(ctx, key, { percentage: target }, version);
      return EXIT.ok;
    },
  },
  on: {
    args: ['key'],
    options: [...COMMON, 'reason'],
    async run(ctx, [key = '']) {
      await patchFlag(ctx, key, { enabled: true }, undefined);
      return EXIT.ok;
    },
  },
  off: {
    // The kill switch: unconditional, no confirmation, no pre-read.
    args: ['key'],
    options: [...COMMON, 'reason'],
    async run(ctx, [key = '']) {
      await patchFlag(ctx, key, { enabled: false }, undefined);
      return EXIT.ok;
    },
  },
  history: {
    args: ['key'],
    options: [...COMMON, 'limit', 'before'],
    async run(ctx, [key = '']) {
      const { body } = await ctx.api.request('GET', `/flags/${enc(key)}/history${pageQuery(ctx.values)}`);
      const page = parse(historyPageSchema, body, 'history page');
      print(ctx, body, () => formatHistory(page));
      return EXIT.ok;
    },
  },
};

function rolloutAction(action: 'approve' | 'pause' | 'resume' | 'abort'): Command {
  return {
    args: ['key'],
    options: [...COMMON, 'reason', ...(action === 'abort' ? (['yes'] as const) : [])],
    async run(ctx, [key = '']) {
      if (action === 'abort' && ctx.io.confirm !== undefined && ctx.values.yes !== true && !(await ctx.io.confirm(`Abort the rollout of '${key}'?`))) {
        throw new OpsError(EXIT.refused, 'not aborted (declined)');
      }
      const reason = ctx.values.reason;
      const { body } = await ctx.api.request('POST', `/flags/${enc(key)}/rollout/${action}`, { body: reason === undefined ? {} : { reason }, headers: reasonHeader(ctx.values) });
      print(ctx, body, () => formatRollout(key, body));
      return EXIT.ok;
    },
  };
}

const rolloutCommands: Record<string, Command> = {
  start: {
    args: ['key'],
    options: [...COMMON, 'plan', 'reason'],
    async run(ctx, [key = '']) {
      const file = ctx.values.plan;
      if (file === undefined) throw usageError('rollout start needs --plan <file.json>');
      let text: string;
      try {
        text = await readFile(file, 'utf8');
      } catch (error) {
        throw usageError(`cannot read the plan file ${file}: ${error instanceof Error ? error.message : String(error)}`);
      }
      let plan: unknown;
      try {
        plan = JSON.parse(text);
      } catch (error) {
        throw new OpsError(EXIT.validation, `the plan file ${file} is not valid JSON: ${error instanceof Error ? error.message : String(error)}`);
      }
      // The plan body carries its own `reason`; --reason fills it in when the file has none.
      const reason = ctx.values.reason;
      const withReason = reason !== undefined && typeof plan === 'object' && plan !== null && !Array.isArray(plan) && !('reason' in plan) ? { ...plan, reason } : plan;
      const { body } = await ctx.api.request('PUT', `/flags/${enc(key)}/rollout`, { body: withReason, headers: reasonHeader(ctx.values) });
      print(ctx, body, () => formatRollout(key, body));
      return EXIT.ok;
    },
  },
  status: {
    args: ['key'],
    options: COMMON,
    async run(ctx, [key = '']) {
      const { body } = await ctx.api.request('GET', `/flags/${enc(key)}/rollout`);
      print(ctx, body, () => formatRollout(key, body));
      return EXIT.ok;
    },
  },
  decisions: {
    args: ['key'],
    options: [...COMMON, 'limit', 'before'],
    async run(ctx, [key = '']) {
      const { body } = await ctx.api.request('GET', `/flags/${enc(key)}/rollout/decisions${pageQuery(ctx.values)}`);
      const page = parse(decisionPageSchema, body, 'decision page');
      print(ctx, body, () => formatDecisions(page));
      return EXIT.ok;
    },
  },
  approve: rolloutAction('approve'),
  pause: rolloutAction('pause'),
  resume: rolloutAction('resume'),
  abort: rolloutAction('abort'),
};

const GROUPS: Record<(typeof OPS_COMMANDS)[number], Record<string, Command>> = { flags: flagCommands, rollout: rolloutCommands };

function report(io: OpsIo, json: boolean, error: OpsError): void {
  if (json && error.body !== undefined) io.stdout(`${JSON.stringify(error.body, null, 2)}\n`);
  io.stderr(`rampart: ${error.message}\n${error.details.map((d) => `${d}\n`).join('')}`);
}

function timeoutMs(values: Values): number {
  const raw = values.timeout;
  if (raw === undefined) return DEFAULT_TIMEOUT_S * 1000;
  const seconds = Number(raw);
  if (!Number.isFinite(seconds) || seconds <= 0 || seconds > 3600) throw usageError(`--timeout must be a number of seconds above 0, got '${raw}'`);
  return seconds * 1000;
}

/**
 * Runs one ops command (`flags ...` or `rollout ...`) and resolves with its exit code; never throws.
 *
 * @example
 * const code = await runOps(['flags', 'off', 'new-checkout', '--reason', 'error spike'], {
 *   env: process.env, stdout: (s) => process.stdout.write(s), stderr: (s) => process.stderr.write(s),
 * });
 */
export async function runOps(argv: readonly string[], io: OpsIo): Promise<number> {
  let json = argv.includes('--json');
  try {
    const parsed = (() => {
      try {
        return parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: true });
      } catch (error) {
        throw usageError(error instanceof Error ? error.message : String(error));
      }
    })();
    const { values, positionals } = parsed;
    json = values.json === true;
    const [group, name, ...args] = positionals;
    if (group === undefined) {
      (values.help === true ? io.stdout : io.stderr)(OPS_USAGE);
      return values.help === true ? EXIT.ok : EXIT.usage;
    }
    const commands = group === 'flags' || group === 'rollout' ? GROUPS[group] : undefined;
    if (commands === undefined) throw usageError(`unknown command '${group}'`);
    if (values.help === true || name === 'help') {
      io.stdout(OPS_USAGE);
      return EXIT.ok;
    }
    if (name === undefined) {
      io.stderr(OPS_USAGE);
      return EXIT.usage;
    }
    const command = Object.hasOwn(commands, name) ? commands[name] : undefined;
    if (command === undefined) throw usageError(`unknown command '${group} ${name}'`);
    if (args.length !== command.args.length) {
      throw usageError(`usage: rampart ${group} ${name} ${command.args.map((a) => `<${a}>`).join(' ')}`.trimEnd());
    }
    for (const option of Object.keys(values) as OptionName[]) {
      if (!command.options.includes(option)) throw usageError(`--${option} does not apply to '${group} ${name}'`);
    }
    const baseUrl = values.url ?? (io.env.RAMPART_URL !== undefined && io.env.RAMPART_URL !== '' ? io.env.RAMPART_URL : DEFAULT_URL);
    if (!/^https?:\/\/[^/]/.test(baseUrl) || !URL.canParse(baseUrl)) {
      throw usageError(`${values.url === undefined ? 'RAMPART_URL' : '--url'} must be an http(s) URL such as ${DEFAULT_URL}, got '${baseUrl}'`);
    }
    const api = createApiClient({
      baseUrl,
      token: io.env.RAMPART_TOKEN,
      timeoutMs: timeoutMs(values),
      fetch: io.fetch ?? fetch,
    });
    return await command.run({ api, values, io, json }, args);
  } catch (error) {
    if (error instanceof OpsError) {
      report(io, json, error);
      return error.exitCode;
    }
    io.stderr(`rampart: unexpected error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    return EXIT.error;
  }
}
