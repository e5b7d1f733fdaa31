// Human-readable rendering of API answers: aligned tables and key/value blocks.
import { z } from 'zod';

export const flagSchema = z.looseObject({
  key: z.string(),
  description: z.string().default(''),
  enabled: z.boolean(),
  percentage: z.number(),
  version: z.number(),
  updatedAt: z.string().optional(),
  updatedBy: z.string().optional(),
  groupId: z.string().optional(),
  stickiness: z.string().optional(),
});
export type OpsFlag = z.infer<typeof flagSchema>;

export const flagListSchema = z.looseObject({ revision: z.number(), flags: z.array(flagSchema) });

export const historyPageSchema = z.looseObject({
  entries: z.array(
    z.looseObject({
      at: z.string(),
      actor: z.string(),
      source: z.string(),
      action: z.string(),
      revision: z.number().optional(),
      reason: z.string().optional(),
      before: flagSchema.nullable(),
      after: flagSchema.nullable(),
    }),
  ),
  next: z.string().optional(),
});
export type HistoryPage = z.infer<typeof historyPageSchema>;

export const decisionPageSchema = z.looseObject({
  entries: z.array(
    z.looseObject({
      at: z.string(),
      actor: z.string(),
      action: z.string(),
      status: z.string(),
      stage: z.number(),
      reason: z.string(),
      flag: z.looseObject({ enabled: z.boolean().optional(), percentage: z.number().optional() }).optional(),
    }),
  ),
  next: z.string().optional(),
});

/** Aligned columns, the header first; the last column is not padded. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ').trimEnd();
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}

const pct = (p: number): string => `${p}%`;
const onOff = (enabled: boolean): string => (enabled ? 'on' : 'off');

/** `flags list`: one row per flag. */
export function formatFlagList(list: z.infer<typeof flagListSchema>): string {
  if (list.flags.length === 0) return `no flags (revision ${list.revision})\n`;
  const rows = list.flags.map((f) => [f.key, onOff(f.enabled), pct(f.percentage), String(f.version), f.updatedAt ?? '', f.updatedBy ?? '', f.description]);
  return table(['KEY', 'ENABLED', 'PERCENT', 'VERSION', 'UPDATED', 'BY', 'DESCRIPTION'], rows);
}

/** `flags get` and every write: the flag as key/value lines. */
export function formatFlag(flag: OpsFlag): string {
  const rows: [string, string][] = [
    ['key', flag.key],
    ['enabled', onOff(flag.enabled)],
    ['percentage', pct(flag.percentage)],
    ['effective', flag.enabled ? pct(flag.percentage) : '0% (kill switch off)'],
    ['version', String(flag.version)],
  ];
  if (flag.description !== '') rows.push(['description', flag.description]);
  if (flag.groupId !== undefined && flag.groupId !== flag.key) rows.push(['groupId', flag.groupId]);
  if (flag.stickiness !== undefined && flag.stickiness !== 'userId') rows.push(['stickiness', flag.stickiness]);
  if (flag.updatedAt !== undefined) rows.push(['updated', `${flag.updatedAt}${flag.updatedBy === undefined ? '' : ` by ${flag.updatedBy}`}`]);
  const width = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${`${k}:`.padEnd(width + 1)} ${v}`).join('\n') + '\n';
}

function change(before: OpsFlag | null, after: OpsFlag | null): string {
  if (before === null && after !== null) return `created ${onOff(after.enabled)} at ${pct(after.percentage)}`;
  if (before !== null && after === null) return 'deleted';
  if (before === null || after === null) return '';
  const parts: string[] = [];
  if (before.enabled !== after.enabled) parts.push(`enabled ${onOff(before.enabled)} -> ${onOff(after.enabled)}`);
  if (before.percentage !== after.percentage) parts.push(`percentage ${pct(before.percentage)} -> ${pct(after.percentage)}`);
  for (const field of ['description', 'groupId', 'stickiness'] as const) {
    if (before[field] !== after[field]) parts.push(`${field} changed`);
  }
  return parts.join(', ');
}

/** `flags history`: newest first, with what each entry changed. */
export function formatHistory(page: HistoryPage): string {
  if (page.entries.length === 0) return 'no history\n';
  const rows = page.entries.map((e) => [e.at, e.actor, e.source, e.action, change(e.before, e.after), e.reason ?? '']);
  let out = table(['AT', 'ACTOR', 'SOURCE', 'ACTION', 'CHANGE', 'REASON'], rows);
  if (page.next !== undefined) out += `(older entries: --before ${page.next})\n`;
  return out;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The status of a rollout answer, wherever the API puts it (`status` or `state.status`). */
export function rolloutStatus(body: unknown): string | undefined {
  if (!isRecord(body)) return undefined;
  if (typeof body.status === 'string') return body.status;
  const state = body.state;
  if (isRecord(state) && typeof state.status === 'string') return state.status;
  return undefined;
}

const time = (value: unknown): string | undefined =>
  typeof value === 'number' ? new Date(value).toISOString() : typeof value === 'string' ? value : undefined;

/** A rollout answer as key/value lines: status, stage, timings, reason, criteria. */
export function formatRollout(key: string, body: unknown): string {
  if (!isRecord(body)) return `${JSON.stringify(body)}\n`;
  const state = isRecord(body.state) ? body.state : body;
  const plan = isRecord(body.plan) ? body.plan : undefined;
  const stages = plan !== undefined && Array.isArray(plan.stages) ? plan.stages.filter(isRecord) : [];
  const rows: [string, string][] = [['flag', typeof body.flagKey === 'string' ? body.flagKey : key]];
  rows.push(['status', rolloutStatus(body) ?? 'unknown']);
  if (typeof state.stage === 'number') {
    const at = stages[state.stage];
    const stagePct = typeof body.percentage === 'number' ? body.percentage : at !== undefined && typeof at.percentage === 'number' ? at.percentage : undefined;
    const percentage = stagePct === undefined ? '' : ` at ${pct(stagePct)}`;
    // The API counts stages from 0 (as its reasons do: "holding stage 0"); people count from 1.
    rows.push(['stage', `${state.stage}${stages.length > 0 ? ` (${state.stage + 1} of ${stages.length})` : ''}${percentage}`]);
  }
  if (stages.length > 0) rows.push(['plan', stages.map((s) => (typeof s.percentage === 'number' ? pct(s.percentage) : '?') + (s.approval === true ? ' (approval)' : '')).join(' -> ')]);
  const started = time(state.stageStartedAt);
  if (started !== undefined) rows.push(['stage started', started]);
  const next = time(state.nextCheckAt);
  if (next !== undefined) rows.push(['next check', next]);
  if (typeof state.reason === 'string') rows.push(['reason', state.reason]);
  if (isRecord(state.wouldHave)) rows.push(['dry run would', JSON.stringify(state.wouldHave)]);
  if (typeof state.approvedStage === 'number') rows.push(['approved stage', String(state.approvedStage)]);
  // The API lists criteria as [{ name, passes, consecutiveFails, latest }]; a state keeps a map.
  const criteria = Array.isArray(state.criteria)
    ? state.criteria.filter(isRecord).map((c): [string, Record<string, unknown>] => [typeof c.name === 'string' ? c.name : '?', c])
    : isRecord(state.criteria)
      ? Object.entries(state.criteria).map(([name, c]): [string, Record<string, unknown>] => [name, isRecord(c) ? c : {}])
      : [];
  for (const [name, criterion] of criteria) {
    const counts = `${typeof criterion.passes === 'number' ? criterion.passes : 0} passes, ${typeof criterion.consecutiveFails === 'number' ? criterion.consecutiveFails : 0} fails in a row`;
    const latest = isRecord(criterion.latest) ? `; latest ${JSON.stringify(criterion.latest)}` : '; no sample yet';
    rows.push([`criterion ${name}`, counts + latest]);
  }
  if (typeof body.updatedAt === 'string') rows.push(['updated', `${body.updatedAt}${typeof body.updatedBy === 'string' ? ` by ${body.updatedBy}` : ''}`]);
  const width = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${`${k}:`.padEnd(width + 1)} ${v}`).join('\n') + '\n';
}

/** `rollout decisions`: newest first, with the flag write each one made. */
export function formatDecisions(page: z.infer<typeof decisionPageSchema>): string {
  if (page.entries.length === 0) return 'no decisions\n';
  const rows = page.entries.map((e) => {
    const flag = e.flag === undefined ? '' : [e.flag.enabled === undefined ? '' : onOff(e.flag.enabled), e.flag.percentage === undefined ? '' : pct(e.flag.percentage)].filter((x) => x !== '').join(' ');
    return [e.at, e.actor, e.action, e.status, String(e.stage), flag, e.reason];
  });
  let out = table(['AT', 'ACTOR', 'ACTION', 'STATUS', 'STAGE', 'FLAG', 'REASON'], rows);
  if (page.next !== undefined) out += `(older entries: --before ${page.next})\n`;
  return out;
}
