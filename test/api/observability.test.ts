import { trace } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { instrumentStore } from '../../src/store/instrumented-store.js';
import { createEmbeddedStore } from '../../src/store/embedded-store.js';
import { Registry } from '../../src/prometheus.js';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildTestApp } from '../support/app.js';
import type { TestApp } from '../support/app.js';
import { parseMetrics } from '../support/metrics-text.js';


describe('observability', () => {
  const exporter = new InMemorySpanExporter();
  let t: TestApp;
  beforeAll(async () => {
    trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }));
    const registry = new Registry();
    const store = instrumentStore(await createEmbeddedStore({ dir: mkdtempSync(join(tmpdir(), 'rampart-obs-')) }), registry);
    t = await buildTestApp({ store, registry });
    await t.app.inject({ method: 'PUT', url: '/flags/observed', payload: { enabled: true, percentage: 12.5 } });
    await t.cache.resync();
  });
  afterAll(async () => {
    await t.close();
    trace.disable();
  });

  it('exports request counts and durations by route and status in Prometheus text format', async () => {
    await t.app.inject({ method: 'GET', url: '/flags/observed' });
    await t.app.inject({ method: 'GET', url: '/flags/missing' });
    const res = await t.app.inject({ method: 'GET', url: '/metrics' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toContain('text/plain; version=0.0.4');
    const m = parseMetrics(res.body);
    expect(m.get('rampart_http_requests_total{method="GET",route="/flags/:key",status="200"}')).toBe(1);
    expect(m.get('rampart_http_requests_total{method="GET",route="/flags/:key",status="404"}')).toBe(1);
    expect(m.get('rampart_http_request_duration_seconds_count{method="GET",route="/flags/:key"}')).toBe(2);
    expect(res.body).toContain('# TYPE rampart_http_request_duration_seconds histogram');
  });

  it('exports per-flag enabled and percentage gauges, snapshot revision and age, and stream subscribers', async () => {
    const m = parseMetrics((await t.app.inject({ method: 'GET', url: '/metrics' })).body);
    expect(m.get('rampart_flag_enabled{flag="observed"}')).toBe(1);
    expect(m.get('rampart_flag_percentage{flag="observed"}')).toBe(12.5);
    expect(m.get('rampart_snapshot_revision')).toBe(t.cache.revision);
    expect(m.get('rampart_snapshot_age_seconds')).toBeGreaterThanOrEqual(0);
    expect(m.get('rampart_stream_subscribers')).toBe(0);
    await t.app.inject({ method: 'DELETE', url: '/flags/observed' });
    await t.cache.resync();
    const after = (await t.app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(after).not.toContain('rampart_flag_enabled{flag="observed"}');
  });

  it('exports store call latencies by operation', async () => {
    const m = parseMetrics((await t.app.inject({ method: 'GET', url: '/metrics' })).body);
    expect(m.get('rampart_store_duration_seconds_count{operation="put"}')).toBeGreaterThanOrEqual(1);
    expect(m.get('rampart_store_duration_seconds_count{operation="snapshot"}')).toBeGreaterThanOrEqual(1);
  });

  it('records OpenTelemetry spans around requests and store calls', async () => {
    exporter.reset();
    await t.app.inject({ method: 'PUT', url: '/flags/traced', payload: { percentage: 1 } });
    const names = exporter.getFinishedSpans().map((s) => s.name);
    expect(names).toContain('PUT /flags/:key');
    expect(names).toContain('store.put');
    expect(names).toContain('store.get');
    const request = exporter.getFinishedSpans().find((s) => s.name === 'PUT /flags/:key');
    expect(request?.attributes['http.response.status_code']).toBe(201);
  });
});
