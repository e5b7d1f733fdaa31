/** A tiny Prometheus registry: counters, gauges and histograms with labels, text exposition. */

type Labels = Readonly<Record<string, string>>;

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function labelText(labels: Labels, extra?: [string, string]): string {
  const pairs = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`);
  if (extra !== undefined) pairs.push(`${extra[0]}="${escapeLabel(extra[1])}"`);
  return pairs.length === 0 ? '' : `{${pairs.join(',')}}`;
}

function keyOf(labels: Labels): string {
  return JSON.stringify(Object.entries(labels).sort(([a], [b]) => a.localeCompare(b)));
}

function formatNumber(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}

interface Metric {
  render(): string;
}

abstract class Labelled<V> implements Metric {
  protected readonly series = new Map<string, { labels: Labels; value: V }>();
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: 'counter' | 'gauge' | 'histogram',
  ) {}

  protected entry(labels: Labels, init: () => V): { labels: Labels; value: V } {
    const key = keyOf(labels);
    let found = this.series.get(key);
    if (found === undefined) {
      found = { labels: { ...labels }, value: init() };
      this.series.set(key, found);
    }
    return found;
  }

  /** Forgets one series (e.g. a deleted flag's gauges). */
  remove(labels: Labels): void {
    this.series.delete(keyOf(labels));
  }

  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} ${this.type}`];
    for (const { labels, value } of this.series.values()) lines.push(...this.lines(labels, value));
    return lines.join('\n');
  }

  protected abstract lines(labels: Labels, value: V): string[];
}

export class Counter extends Labelled<{ n: number }> {
  inc(labels: Labels = {}, by = 1): void {
    this.entry(labels, () => ({ n: 0 })).value.n += by;
  }
  /**
   * The series of one label set, looked up once: for hot paths, where `inc(labels)` would sort
   * and serialise the labels on every call.
   *
   * @example
   * const ok = requests.child({ route: '/flags', status: '200' }); ok.inc();
   */
  child(labels: Labels): { inc(by?: number): void } {
    const value = this.entry(labels, () => ({ n: 0 })).value;
    return {
      inc(by = 1) {
        value.n += by;
      },
    };
  }
  protected lines(labels: Labels, value: { n: number }): string[] {
    return [`${this.name}${labelText(labels)} ${formatNumber(value.n)}`];
  }
}

export class Gauge extends Labelled<{ n: number }> {
  set(labels: Labels, value: number): void {
    this.entry(labels, () => ({ n: 0 })).value.n = value;
  }
  inc(labels: Labels = {}, by = 1): void {
    this.entry(labels, () => ({ n: 0 })).value.n += by;
  }
  protected lines(labels: Labels, value: { n: number }): string[] {
    return [`${this.name}${labelText(labels)} ${formatNumber(value.n)}`];
  }
}

interface HistogramValue {
  counts: number[];
  sum: number;
  count: number;
}

export class Histogram extends Labelled<HistogramValue> {
  constructor(
    name: string,
    help: string,
    readonly buckets: readonly number[],
  ) {
    super(name, help, 'histogram');
  }
  observe(labels: Labels, value: number): void {
    this.#record(this.entry(labels, () => this.#empty()).value, value);
  }
  /**
   * The series of one label set, looked up once (see {@link Counter.child}).
   *
   * @example
   * const flagsRoute = durations.child({ route: '/flags' }); flagsRoute.observe(0.004);
   */
  child(labels: Labels): { observe(value: number): void } {
    const series = this.entry(labels, () => this.#empty()).value;
    return {
      observe: (value) => {
        this.#record(series, value);
      },
    };
  }
  #empty(): HistogramValue {
    return { counts: this.buckets.map(() => 0), sum: 0, count: 0 };
  }
  #record(v: HistogramValue, value: number): void {
    for (let i = 0; i < this.buckets.length; i++) {
      if (value <= (this.buckets[i] ?? Infinity)) v.counts[i] = (v.counts[i] ?? 0) + 1;
    }
    v.sum += value;
    v.count += 1;
  }
  protected lines(labels: Labels, value: HistogramValue): string[] {
    const out = this.buckets.map((le, i) => `${this.name}_bucket${labelText(labels, ['le', formatNumber(le)])} ${value.counts[i] ?? 0}`);
    out.push(`${this.name}_bucket${labelText(labels, ['le', '+Inf'])} ${value.count}`);
    out.push(`${this.name}_sum${labelText(labels)} ${formatNumber(value.sum)}`);
    out.push(`${this.name}_count${labelText(labels)} ${value.count}`);
    return out;
  }
}

/**
 * Holds metrics and renders them in the Prometheus text format.
 *
 * @example
 * const registry = new Registry();
 * const hits = registry.counter('rampart_hits_total', 'Hits.');
 * hits.inc({ route: '/flags' });
 */
export class Registry {
  readonly #metrics: Metric[] = [];
  readonly #collectors: (() => void)[] = [];

  counter(name: string, help: string): Counter {
    return this.#add(new Counter(name, help, 'counter'));
  }
  gauge(name: string, help: string): Gauge {
    return this.#add(new Gauge(name, help, 'gauge'));
  }
  histogram(name: string, help: string, buckets: readonly number[]): Histogram {
    return this.#add(new Histogram(name, help, buckets));
  }
  /** Runs `collect` before every render, to refresh gauges read from elsewhere. */
  onCollect(collect: () => void): void {
    this.#collectors.push(collect);
  }
  render(): string {
    for (const collect of this.#collectors) collect();
    return `${this.#metrics.map((m) => m.render()).join('\n')}\n`;
  }
  #add<M extends Metric>(metric: M): M {
    this.#metrics.push(metric);
    return metric;
  }
}
