// The timeline: percentage served over time as a step line, a marker per flag change and per
// guard decision. Inline SVG drawn from the history and decisions the API returns.
import type { DecisionView, HistoryView, SampleView } from './api.js';
import { clock, h, svg } from './dom.js';

/** One point of interest on the timeline, change or decision, with what its tooltip says. */
export interface TimelineEvent {
  readonly at: number;
  readonly iso: string;
  readonly kind: 'change' | 'decision' | 'hold';
  readonly who: string;
  readonly what: string;
  readonly why: string;
  /** Observed values of the criteria, one line each. */
  readonly observed: readonly string[];
  /** Percentage served right after the event. */
  readonly served: number;
}

const W = 800;
const H = 240;
const M = { left: 44, right: 16, top: 14, bottom: 30 };

const served = (flag: { enabled: boolean; percentage: number } | null): number => (flag?.enabled === true ? flag.percentage : 0);

/** One line per criterion sample: `error-rate: 0.02 (n=120) vs < 0.05: pass`. */
export function sampleLine(s: SampleView): string {
  const value = s.value === undefined ? 'no value' : String(Math.round(s.value * 10_000) / 10_000);
  const n = s.samples === undefined ? '' : ` (n=${s.samples})`;
  return `${s.criterion}: ${value}${n} vs ${s.threshold}: ${s.verdict}`;
}

/** History and decisions merged, oldest first, each with the percentage served after it. */
export function timelineEvents(history: readonly HistoryView[], decisions: readonly DecisionView[]): TimelineEvent[] {
  const changes = history.map((e) => {
    const before = served(e.before);
    const after = served(e.after);
    const toggle = e.before?.enabled !== e.after?.enabled ? ` (${e.after === null ? 'deleted' : e.after.enabled ? 'turned on' : 'turned off'})` : '';
    return {
      at: Date.parse(e.at),
      iso: e.at,
      kind: 'change' as const,
      who: `${e.actor} via ${e.source}`,
      what: `${e.action}: ${before}% → ${after}%${toggle}`,
      why: e.reason ?? '',
      observed: [],
      served: after,
    };
  });
  changes.sort((a, b) => a.at - b.at);
  const servedAt = (at: number): number => {
    let value = 0;
    for (const c of changes) if (c.at <= at) value = c.served;
    return value;
  };
  const guard = decisions.map((d) => {
    const at = Date.parse(d.at);
    return {
      at,
      iso: d.at,
      kind: d.action === 'hold' ? ('hold' as const) : ('decision' as const),
      who: d.actor,
      what: `${d.action} → stage ${d.stage} (${d.status})${d.flag?.percentage === undefined ? '' : `, ${d.flag.percentage}%`}`,
      why: d.reason,
      observed: d.samples.map(sampleLine),
      served: d.flag?.percentage ?? servedAt(at),
    };
  });
  return [...changes, ...guard].sort((a, b) => a.at - b.at);
}

/** What a marker's tooltip and accessible name say. */
export function describe(e: TimelineEvent): string {
  const lines = [`${clock(e.iso)} ${e.kind === 'change' ? 'Flag change' : 'Guard decision'} by ${e.who}`, e.what];
  if (e.why !== '') lines.push(`Why: ${e.why}`);
  for (const o of e.observed) lines.push(`Observed ${o}`);
  return lines.join('\n');
}

/**
 * Draws the timeline into `host`; `tooltip` shows a marker's details on hover and focus.
 *
 * @example
 * drawTimeline(byId('chart'), byId('tooltip'), timelineEvents(history, decisions), Date.now());
 */
export function drawTimeline(host: HTMLElement, tooltip: HTMLElement, events: readonly TimelineEvent[], now: number): void {
  const changes = events.filter((e) => e.kind === 'change');
  const first = events[0]?.at ?? now - 60_000;
  const t0 = Math.min(first, now - 10_000);
  const t1 = Math.max(now, events[events.length - 1]?.at ?? now);
  const span = Math.max(1, t1 - t0);
  const x = (t: number): number => M.left + ((t - t0) / span) * (W - M.left - M.right);
  const y = (p: number): number => M.top + (1 - p / 100) * (H - M.top - M.bottom);
  const f = (n: number): string => n.toFixed(1);

  const current = changes[changes.length - 1]?.served ?? 0;
  const title = svg('title', { id: 'chart-title' }, `Percentage served over time; now ${current}%`);
  const desc = svg('desc', { id: 'chart-desc' }, `${changes.length} flag changes and ${events.length - changes.length} guard decisions between ${clock(new Date(t0).toISOString())} and ${clock(new Date(t1).toISOString())}. The same events are listed in the table below the chart.`);
  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-labelledby': 'chart-title chart-desc', preserveAspectRatio: 'xMidYMid meet' }, title, desc);

  for (const p of [0, 25, 50, 75, 100]) {
    root.append(
      svg('line', { x1: f(M.left), x2: f(W - M.right), y1: f(y(p)), y2: f(y(p)), class: 'grid-line' }),
      svg('text', { x: f(M.left - 6), y: f(y(p) + 4), class: 'axis', 'text-anchor': 'end' }, `${p}%`),
    );
  }
  for (let i = 0; i <= 4; i++) {
    const t = t0 + (span * i) / 4;
    root.append(svg('text', { x: f(x(t)), y: f(H - 10), class: 'axis', 'text-anchor': i === 0 ? 'start' : i === 4 ? 'end' : 'middle' }, clock(new Date(t).toISOString())));
  }

  if (changes.length > 0) {
    let d = '';
    let last = 0;
    changes.forEach((c, i) => {
      d += i === 0 ? `M${f(x(c.at))},${f(y(c.served))}` : `H${f(x(c.at))}V${f(y(c.served))}`;
      last = c.served;
    });
    d += `H${f(x(t1))}`;
    root.append(svg('path', { d, class: 'series' }));
    root.append(svg('text', { x: f(W - M.right), y: f(y(last) - 6), class: 'now-label', 'text-anchor': 'end' }, `${last}%`));
  }

  const show = (e: TimelineEvent, target: Element): void => {
    tooltip.replaceChildren(...describe(e).split('\n').map((line, i) => h(i === 0 ? 'strong' : 'span', {}, line)));
    tooltip.hidden = false;
    const box = target.getBoundingClientRect();
    const frame = (host.parentElement ?? host).getBoundingClientRect();
    const left = Math.min(box.left - frame.left + 12, frame.width - 300);
    tooltip.style.left = `${Math.max(0, left)}px`;
    tooltip.style.top = `${box.bottom - frame.top + 6}px`;
  };
  const hide = (): void => {
    tooltip.hidden = true;
  };

  for (const e of events) {
    const cx = x(e.at);
    const cy = e.kind === 'hold' ? H - M.bottom - 4 : y(e.served);
    const label = describe(e);
    let shape: SVGElement;
    if (e.kind === 'change') shape = svg('circle', { cx: f(cx), cy: f(cy), r: '5', class: 'm-change' });
    else if (e.kind === 'decision') shape = svg('rect', { x: f(cx - 5), y: f(cy - 5), width: '10', height: '10', transform: `rotate(45 ${f(cx)} ${f(cy)})`, class: 'm-decision' });
    else shape = svg('circle', { cx: f(cx), cy: f(cy), r: '2.5', class: 'm-hold' });
    // Holds are many and say little: hover shows them, the table lists them, Tab skips them.
    const marker = svg('g', e.kind === 'hold' ? { class: 'marker', 'aria-hidden': 'true' } : { class: 'marker', tabindex: '0', role: 'img', 'aria-label': label.replace(/\n/g, '. ') }, shape);
    marker.addEventListener('mouseenter', () => {
      show(e, marker);
    });
    marker.addEventListener('focus', () => {
      show(e, marker);
    });
    marker.addEventListener('mouseleave', hide);
    marker.addEventListener('blur', hide);
    root.append(marker);
  }
  host.replaceChildren(root);
  hide();
}
