// The ops page: flag list, one flag's timeline, criteria and outcomes, live from the change
// stream, with the same actions as the API (which stays the judge of what is allowed).
import { api, ApiError, apiOptional, flagPath, tokenStore } from './api.js';
import type { DecisionView, FlagView, HistoryView, OutcomesView, RolloutView, SampleView } from './api.js';
import { drawTimeline, describe, timelineEvents } from './chart.js';
import { byId, h, setRows, timeEl } from './dom.js';
import { followStream } from './stream.js';
import type { StreamEvent } from './stream.js';

type SortKey = 'key' | 'enabled' | 'percentage' | 'status' | 'stage';
const COMMANDS = ['pause', 'resume', 'approve', 'abort'] as const;
const POLL_MS = 5000;
const FINAL = ['completed', 'aborted'];

const state = {
  flags: [] as FlagView[],
  rollouts: new Map<string, RolloutView | null>(),
  sort: { key: 'key' as SortKey, ascending: true },
  filter: '',
  selected: undefined as string | undefined,
  detailSeq: 0,
  lastSeen: new Map<string, string>(),
  stopStream: undefined as (() => void) | undefined,
  poll: undefined as ReturnType<typeof setInterval> | undefined,
};

const el = {
  login: byId('login', HTMLElement),
  tokenForm: byId('token-form', HTMLFormElement),
  token: byId('token', HTMLInputElement),
  workspace: byId('workspace', HTMLElement),
  signOut: byId('sign-out', HTMLButtonElement),
  connection: byId('connection', HTMLElement),
  announce: byId('announce', HTMLElement),
  error: byId('error', HTMLElement),
  filter: byId('filter', HTMLInputElement),
  table: byId('flag-table', HTMLTableElement),
  empty: byId('flags-empty', HTMLElement),
  detail: byId('detail', HTMLElement),
  title: byId('detail-title', HTMLElement),
  description: byId('detail-description', HTMLElement),
  summary: byId('detail-summary', HTMLElement),
  kill: byId('kill', HTMLButtonElement),
  actionOk: byId('action-ok', HTMLElement),
  actionError: byId('action-error', HTMLElement),
  chart: byId('chart', HTMLElement),
  tooltip: byId('tooltip', HTMLElement),
  events: byId('events', HTMLTableElement),
  criteria: byId('criteria', HTMLTableElement),
  outcomes: byId('outcomes', HTMLTableElement),
  dialog: byId('kill-dialog', HTMLDialogElement),
  dialogText: byId('kill-text', HTMLElement),
  dialogReason: byId('kill-reason', HTMLInputElement),
};

const say = (text: string): void => {
  // Cleared first so the same text twice is announced twice.
  el.announce.textContent = '';
  setTimeout(() => (el.announce.textContent = text), 50);
};

const showError = (text: string | undefined): void => {
  el.error.hidden = text === undefined;
  el.error.textContent = text ?? '';
};

const problemText = (error: unknown): string =>
  error instanceof ApiError ? `${error.title}${error.status > 0 ? ` (HTTP ${error.status})` : ''}${error.detail === '' ? '' : `: ${error.detail}`}` : String(error);

/** A refused token ends the session: the person types a valid one. */
function handleAuth(error: unknown): boolean {
  if (error instanceof ApiError && (error.status === 401 || error.status === 403)) {
    signOut(`The token was refused: ${error.detail}`);
    return true;
  }
  return false;
}

// ---- flag list ----

const statusOf = (key: string): string => state.rollouts.get(key)?.status ?? '';
const stageOf = (r: RolloutView | null | undefined): string => (r === null || r === undefined ? '—' : `${r.stage + 1} of ${r.plan.stages.length}`);

function sortValue(flag: FlagView, key: SortKey): string | number {
  switch (key) {
    case 'key':
      return flag.key;
    case 'enabled':
      return flag.enabled ? 1 : 0;
    case 'percentage':
      return flag.percentage;
    case 'status':
      return statusOf(flag.key) || '~';
    case 'stage':
      return state.rollouts.get(flag.key)?.stage ?? -1;
  }
}

function renderFlags(): void {
  const needle = state.filter.trim().toLowerCase();
  const shown = state.flags.filter((f) => needle === '' || `${f.key} ${f.description} ${statusOf(f.key)} ${f.enabled ? 'on' : 'off'}`.toLowerCase().includes(needle));
  const { key, ascending } = state.sort;
  shown.sort((a, b) => {
    const va = sortValue(a, key);
    const vb = sortValue(b, key);
    const order = typeof va === 'number' && typeof vb === 'number' ? va - vb : String(va).localeCompare(String(vb));
    return (ascending ? order : -order) || a.key.localeCompare(b.key);
  });
  for (const th of Array.from(el.table.tHead?.rows[0]?.cells ?? [])) {
    if (th.dataset.sort === key) th.setAttribute('aria-sort', ascending ? 'ascending' : 'descending');
    else th.removeAttribute('aria-sort');
  }
  setRows(
    el.table,
    shown.map((f) => {
      const rollout = state.rollouts.get(f.key);
      const selected = f.key === state.selected;
      const open = h('button', { type: 'button', class: 'link', 'data-key': f.key, 'aria-current': selected ? 'true' : undefined }, f.key);
      open.addEventListener('click', () => {
        void selectFlag(f.key, true);
      });
      return h(
        'tr',
        { class: selected ? 'selected' : undefined, 'data-flag': f.key },
        h('th', { scope: 'row' }, open, f.description === '' ? null : h('span', { class: 'desc' }, f.description)),
        h('td', {}, h('span', { class: f.enabled ? 'badge on' : 'badge off' }, f.enabled ? 'On' : 'Off')),
        h('td', { class: 'num' }, `${f.percentage}%`),
        h('td', {}, rollout === null || rollout === undefined ? h('span', { class: 'muted' }, 'no plan') : h('span', { class: `status s-${rollout.status}` }, rollout.status)),
        h('td', {}, stageOf(rollout)),
      );
    }),
  );
  el.empty.hidden = shown.length > 0;
}

async function loadRollouts(keys: readonly string[]): Promise<void> {
  await Promise.all(
    keys.map(async (key) => {
      try {
        state.rollouts.set(key, (await apiOptional<RolloutView>(flagPath(key, '/rollout'))) ?? null);
      } catch (error) {
        if (!handleAuth(error)) state.rollouts.delete(key);
      }
    }),
  );
}

async function loadFlags(rolloutKeys?: readonly string[]): Promise<void> {
  try {
    const { flags } = await api<{ flags: FlagView[] }>('GET', '/flags');
    state.flags = flags;
    const known = new Set(flags.map((f) => f.key));
    for (const key of state.rollouts.keys()) if (!known.has(key)) state.rollouts.delete(key);
    await loadRollouts(rolloutKeys ?? flags.map((f) => f.key));
    showError(undefined);
    renderFlags();
  } catch (error) {
    if (!handleAuth(error)) showError(`Could not load flags: ${problemText(error)}`);
  }
}

// ---- one flag ----

function summaryRow(label: string, field: string, value: Node | string): HTMLElement[] {
  return [h('dt', {}, label), h('dd', { 'data-field': field }, value)];
}

function renderDetail(flag: FlagView, rollout: RolloutView | undefined, history: readonly HistoryView[], decisions: readonly DecisionView[], outcomes: OutcomesView | undefined): void {
  el.title.textContent = flag.key;
  el.description.textContent = flag.description;
  el.summary.replaceChildren(
    ...summaryRow('Toggle', 'enabled', h('span', { class: flag.enabled ? 'badge on' : 'badge off' }, flag.enabled ? 'On' : 'Off')),
    ...summaryRow('Percentage', 'percentage', `${flag.percentage}%`),
    ...summaryRow('Rollout', 'status', rollout === undefined ? 'no plan' : rollout.status),
    ...summaryRow('Stage', 'stage', rollout === undefined ? '—' : `${stageOf(rollout)}: ${rollout.percentage}%${rollout.plan.stages[rollout.stage]?.hold === undefined ? '' : `, hold ${rollout.plan.stages[rollout.stage]?.hold ?? ''}`}`),
    ...(rollout?.reason === undefined ? [] : summaryRow('Reason', 'reason', rollout.reason)),
    ...(rollout?.nextCheckAt === undefined || rollout.nextCheckAt === null ? [] : summaryRow('Next check', 'next-check', timeEl(rollout.nextCheckAt))),
    ...summaryRow('Last change', 'updated', h('span', {}, `${flag.updatedBy}, `, timeEl(flag.updatedAt))),
  );
  el.kill.disabled = !flag.enabled;
  el.kill.title = flag.enabled ? 'Turn the flag off for everyone' : 'The flag is already off';
  for (const command of COMMANDS) {
    const button = el.detail.querySelector<HTMLButtonElement>(`button[data-command="${command}"]`);
    if (button !== null) button.disabled = rollout === undefined;
  }

  const events = timelineEvents(history, decisions);
  drawTimeline(el.chart, el.tooltip, events, Date.now());
  setRows(
    el.events,
    [...events].reverse().map((e) => {
      const lines = describe(e).split('\n').slice(2);
      return h('tr', {}, h('td', {}, timeEl(e.iso)), h('td', {}, e.kind === 'change' ? 'flag change' : e.kind === 'hold' ? 'guard hold' : 'guard decision'), h('td', {}, e.who), h('td', {}, e.what), h('td', { class: 'why' }, ...lines.map((l) => h('span', {}, l))));
    }),
  );

  const criteria = rollout?.criteria ?? [];
  // Decisions come newest first: the first sample of a criterion met is its latest.
  const lastSamples = new Map<string, { sample: SampleView; at: string }>();
  for (const d of decisions) {
    for (const sample of d.samples) if (!lastSamples.has(sample.criterion)) lastSamples.set(sample.criterion, { sample, at: d.at });
  }
  setRows(
    el.criteria,
    criteria.length === 0
      ? [h('tr', {}, h('td', { colspan: '7', class: 'muted' }, rollout === undefined ? 'No rollout plan.' : 'This stage has no criteria: it advances on its hold alone.'))]
      : criteria.map((c) => {
          // A new stage starts its criteria afresh; until its first sample, show the guard's last one.
          const earlier = c.latest === null ? lastSamples.get(c.name) : undefined;
          const latest = c.latest ?? (earlier === undefined ? null : { ...earlier.sample, at: earlier.at });
          const verdict = latest === null ? 'not sampled yet' : `${latest.verdict}${earlier === undefined ? '' : ' (earlier stage)'}`;
          return h(
            'tr',
            {},
            h('th', { scope: 'row' }, c.name),
            h('td', { class: 'num' }, latest?.value === undefined ? '—' : `${Math.round(latest.value * 10_000) / 10_000}${latest.samples === undefined ? '' : ` (n=${latest.samples})`}`),
            h('td', {}, latest?.threshold ?? '—'),
            h('td', {}, h('span', { class: `verdict v-${latest?.verdict ?? 'none'}`, title: latest?.detail ?? '' }, verdict)),
            h('td', { class: 'num' }, c.passes),
            h('td', { class: 'num' }, c.consecutiveFails),
            h('td', {}, latest?.at === undefined ? '—' : timeEl(latest.at)),
          );
        }),
  );

  const pct = (v: number | null): string => (v === null ? '—' : `${(v * 100).toFixed(2)}%`);
  const ms = (v: number | null): string => (v === null ? '—' : `${Math.round(v)} ms`);
  setRows(
    el.outcomes,
    outcomes === undefined
      ? [h('tr', {}, h('td', { colspan: '4', class: 'muted' }, 'Outcomes unavailable.'))]
      : (['on', 'off'] as const).map((cohort) => {
          const c = outcomes.cohorts[cohort];
          return h('tr', {}, h('th', { scope: 'row' }, cohort === 'on' ? 'On (flag served)' : 'Off (control)'), h('td', { class: 'num' }, c.count), h('td', { class: 'num' }, pct(c.successRate)), h('td', { class: 'num' }, ms(c.p95)));
        }),
  );

  // Announce what changed since the last render of this flag, not every refresh.
  const seen = `${flag.enabled ? 'on' : 'off'} ${flag.percentage}% ${rollout === undefined ? '' : `${rollout.status} stage ${rollout.stage + 1}`}`;
  const before = state.lastSeen.get(flag.key);
  state.lastSeen.set(flag.key, seen);
  if (before !== undefined && before !== seen) say(`${flag.key} is now ${seen}`);
}

async function loadDetail(): Promise<void> {
  const key = state.selected;
  if (key === undefined) return;
  const seq = ++state.detailSeq;
  try {
    const [flag, rollout, history, decisions, outcomes] = await Promise.all([
      apiOptional<FlagView>(flagPath(key)),
      apiOptional<RolloutView>(flagPath(key, '/rollout')),
      api<{ entries: HistoryView[] }>('GET', flagPath(key, '/history?limit=200')),
      apiOptional<{ entries: DecisionView[] }>(flagPath(key, '/rollout/decisions?limit=200')),
      apiOptional<OutcomesView>(flagPath(key, '/outcomes?window=15m')),
    ]);
    if (seq !== state.detailSeq || key !== state.selected) return;
    if (flag === undefined) {
      el.title.textContent = `${key} (deleted)`;
      say(`${key} was deleted`);
      return;
    }
    state.rollouts.set(key, rollout ?? null);
    renderDetail(flag, rollout, history.entries, decisions?.entries ?? [], outcomes);
  } catch (error) {
    if (!handleAuth(error) && seq === state.detailSeq) showError(`Could not load ${key}: ${problemText(error)}`);
  }
}

async function selectFlag(key: string, focus: boolean): Promise<void> {
  state.selected = key;
  el.detail.hidden = false;
  el.actionOk.textContent = '';
  el.actionError.textContent = '';
  renderFlags();
  await loadDetail();
  if (focus) el.title.focus();
}

// ---- actions ----

async function act(label: string, run: () => Promise<unknown>): Promise<void> {
  el.actionOk.textContent = '';
  el.actionError.textContent = '';
  try {
    await run();
    el.actionOk.textContent = `${label}: done.`;
  } catch (error) {
    if (handleAuth(error)) return;
    el.actionError.textContent = `${label} refused. ${problemText(error)}`;
  }
  await Promise.all([loadDetail(), loadFlags(state.selected === undefined ? [] : [state.selected])]);
}

function openKillDialog(): void {
  const key = state.selected;
  if (key === undefined) return;
  el.dialogText.textContent = `Every user gets "${key}" off at once (enabled: false). A running rollout plan pauses.`;
  el.dialogReason.value = '';
  el.dialog.returnValue = '';
  el.dialog.showModal();
}

el.dialog.addEventListener('close', () => {
  const key = state.selected;
  if (el.dialog.returnValue !== 'confirm' || key === undefined) {
    el.kill.focus();
    return;
  }
  const reason = el.dialogReason.value.trim();
  void act(`Kill switch for ${key}`, () => api('PATCH', flagPath(key), { enabled: false, ...(reason === '' ? {} : { reason }) })).then(() => {
    // The button is disabled once the flag is off; the heading keeps focus in the same place.
    if (el.kill.disabled) el.title.focus();
    else el.kill.focus();
  });
});

// ---- live updates ----

let pendingKeys: Set<string> | 'all' | undefined;
let flushTimer: ReturnType<typeof setTimeout> | undefined;

function onStreamEvent(event: StreamEvent): void {
  if (event.kind === 'snapshot' || pendingKeys === 'all') pendingKeys = 'all';
  else {
    pendingKeys ??= new Set();
    for (const key of event.keys) pendingKeys.add(key);
  }
  // Bursts of changes (a guard tick writes plan and flag) become one refresh.
  clearTimeout(flushTimer);
  flushTimer = setTimeout(() => {
    const keys = pendingKeys;
    pendingKeys = undefined;
    if (keys === undefined) return;
    void loadFlags(keys === 'all' ? undefined : [...keys]);
    if (state.selected !== undefined && (keys === 'all' || keys.has(state.selected))) void loadDetail();
  }, 100);
}

function startLive(): void {
  state.stopStream?.();
  state.stopStream = followStream(tokenStore.get, {
    onEvent: onStreamEvent,
    onState: (s, detail) => {
      el.connection.textContent = s === 'live' ? 'Live: following changes' : `Reconnecting${detail === undefined ? '' : ` (${detail})`}`;
      el.connection.className = `connection ${s}`;
    },
    onUnauthorized: (detail) => {
      signOut(`The token was refused: ${detail}`);
    },
  });
  // Plan-only changes (pause, a hold, a new sample) write no flag, so the stream does not carry them.
  clearInterval(state.poll);
  state.poll = setInterval(() => {
    // Only plans that can still move; a new plan writes its flag, which the stream reports.
    const moving = [...state.rollouts].filter(([, r]) => r !== null && !FINAL.includes(r.status)).map(([key]) => key);
    void loadFlags(moving);
    void loadDetail();
  }, POLL_MS);
}

// ---- session ----

function showWorkspace(): void {
  el.login.hidden = true;
  el.workspace.hidden = false;
  el.signOut.hidden = false;
  void loadFlags();
  startLive();
}

function signOut(message?: string): void {
  tokenStore.clear();
  state.stopStream?.();
  state.stopStream = undefined;
  clearInterval(state.poll);
  state.selected = undefined;
  el.workspace.hidden = true;
  el.detail.hidden = true;
  el.signOut.hidden = true;
  el.login.hidden = false;
  el.connection.textContent = 'Not connected';
  el.connection.className = 'connection';
  showError(message);
  el.token.focus();
}

el.tokenForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const token = el.token.value.trim();
  if (token === '') return;
  tokenStore.set(token);
  el.token.value = '';
  void api('GET', '/flags').then(
    () => {
      showError(undefined);
      showWorkspace();
      say('Signed in');
    },
    (error: unknown) => {
      tokenStore.clear();
      showError(`That token does not work: ${problemText(error)}`);
      el.token.focus();
    },
  );
});

el.signOut.addEventListener('click', () => {
  signOut();
});
el.filter.addEventListener('input', () => {
  state.filter = el.filter.value;
  renderFlags();
});
for (const th of Array.from(el.table.tHead?.rows[0]?.cells ?? [])) {
  th.querySelector('button')?.addEventListener('click', () => {
    const key = th.dataset.sort as SortKey;
    state.sort = { key, ascending: state.sort.key === key ? !state.sort.ascending : true };
    renderFlags();
    say(`Sorted by ${th.textContent.trim()}, ${state.sort.ascending ? 'ascending' : 'descending'}`);
  });
}
el.kill.addEventListener('click', openKillDialog);
for (const command of COMMANDS) {
  el.detail.querySelector(`button[data-command="${command}"]`)?.addEventListener('click', () => {
    const key = state.selected;
    if (key !== undefined) void act(`${command[0]?.toUpperCase() ?? ''}${command.slice(1)} ${key}`, () => api('POST', flagPath(key, `/rollout/${command}`), {}));
  });
}
document.addEventListener('keydown', (event) => {
  if (event.key === 'Escape') el.tooltip.hidden = true;
});

if (tokenStore.get() === null) signOut();
else showWorkspace();
