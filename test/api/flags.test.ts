import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Flag, HistoryEntry } from '../../src/core/flag.js';
import { buildTestApp } from '../support/app.js';
import type { TestApp } from '../support/app.js';

const ADMIN = { authorization: 'Bearer admin-secret' };

describe('admin API /flags', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp({ adminTokens: [{ name: 'alice', secret: 'admin-secret' }] });
  });
  afterAll(async () => {
    await t.close();
  });

  const put = (key: string, body: unknown, headers: Record<string, string> = {}) =>
    t.app.inject({ method: 'PUT', url: `/flags/${key}`, headers: { ...ADMIN, ...headers }, payload: body as Record<string, unknown> });
  const patch = (key: string, body: unknown, headers: Record<string, string> = {}) =>
    t.app.inject({ method: 'PATCH', url: `/flags/${key}`, headers: { ...ADMIN, ...headers }, payload: body as Record<string, unknown> });
  const get = (url: string, headers: Record<string, string> = {}) => t.app.inject({ method: 'GET', url, headers: { ...ADMIN, ...headers } });

  it('creates a flag with PUT (201, Location, ETag) and fills defaults', async () => {
    const res = await put('async-reports', { description: 'async pipeline', enabled: true, percentage: 10 });
    expect(res.statusCode).toBe(201);
    expect(res.headers.location).toBe('/flags/async-reports');
    expect(res.headers.etag).toBe('"1"');
    const flag = res.json<Flag>();
    expect(flag).toMatchObject({ key: 'async-reports', enabled: true, percentage: 10, groupId: 'async-reports', stickiness: 'userId', version: 1, updatedBy: 'alice' });
    expect(Date.parse(flag.updatedAt)).not.toBeNaN();
  });

  it('replaces a flag with PUT (200) and bumps the version', async () => {
    await put('replace-me', { enabled: true, percentage: 5, description: 'x' });
    const res = await put('replace-me', { percentage: 7 });
    expect(res.statusCode).toBe(200);
    expect(res.json<Flag>()).toMatchObject({ enabled: false, percentage: 7, description: '', version: 2 });
  });

  it('reads one flag with its ETag and answers 304 to a matching If-None-Match', async () => {
    await put('etag-flag', { enabled: true });
    const res = await get('/flags/etag-flag');
    expect(res.statusCode).toBe(200);
    expect(res.headers.etag).toBe('"1"');
    const again = await get('/flags/etag-flag', { 'if-none-match': '"1"' });
    expect(again.statusCode).toBe(304);
  });

  it('lists flags sorted by key with the global revision', async () => {
    await put('zz-last', {});
    await put('aa-first', {});
    const res = await get('/flags');
    expect(res.statusCode).toBe(200);
    const body = res.json<{ revision: number; flags: Flag[] }>();
    const keys = body.flags.map((f) => f.key);
    expect(keys).toEqual([...keys].sort());
    expect(keys).toContain('aa-first');
    expect(body.revision).toBeGreaterThanOrEqual(2);
  });

  it('PATCH changes only the given fields (percentage, then the kill switch)', async () => {
    await put('patch-me', { description: 'keep me', enabled: true, percentage: 1 });
    const ramp = await patch('patch-me', { percentage: 25 });
    expect(ramp.statusCode).toBe(200);
    expect(ramp.json<Flag>()).toMatchObject({ description: 'keep me', enabled: true, percentage: 25, version: 2 });
    const kill = await patch('patch-me', { enabled: false });
    expect(kill.json<Flag>()).toMatchObject({ enabled: false, percentage: 25, version: 3 });
  });

  it('PATCH with no actual change writes nothing: same version, no history entry', async () => {
    await put('noop', { percentage: 3 });
    const res = await patch('noop', { percentage: 3 });
    expect(res.statusCode).toBe(200);
    expect(res.json<Flag>().version).toBe(1);
    const history = (await get('/flags/noop/history')).json<{ entries: HistoryEntry[] }>();
    expect(history.entries).toHaveLength(1);
  });

  it('honours If-Match: 200 on the current version, 412 with the current version on a stale one', async () => {
    await put('cas', { percentage: 1 });
    const ok = await patch('cas', { percentage: 2 }, { 'if-match': '"1"' });
    expect(ok.statusCode).toBe(200);
    const stale = await patch('cas', { percentage: 3 }, { 'if-match': '"1"' });
    expect(stale.statusCode).toBe(412);
    expect(stale.headers['content-type']).toContain('application/problem+json');
    expect(stale.json<{ detail: string }>().detail).toContain('version 2');
    expect((await get('/flags/cas')).json<Flag>().percentage).toBe(2);
    const stalePut = await put('cas', { percentage: 9 }, { 'if-match': '"1"' });
    expect(stalePut.statusCode).toBe(412);
    const missing = await put('never-made', { percentage: 9 }, { 'if-match': '"1"' });
    expect(missing.statusCode).toBe(412);
    expect((await get('/flags/never-made')).statusCode).toBe(404);
  });

  it('If-None-Match: * on PUT creates only: 412 when the flag exists', async () => {
    const first = await put('create-only', { percentage: 1 }, { 'if-none-match': '*' });
    expect(first.statusCode).toBe(201);
    const second = await put('create-only', { percentage: 50 }, { 'if-none-match': '*' });
    expect(second.statusCode).toBe(412);
    expect((await get('/flags/create-only')).json<Flag>().percentage).toBe(1);
  });

  it('records the change reason from the body or the X-Change-Reason header in history', async () => {
    await put('reasons', { percentage: 1, reason: 'canary' });
    await patch('reasons', { percentage: 5 }, { 'x-change-reason': 'stage 2' });
    const res = await get('/flags/reasons/history');
    expect(res.statusCode).toBe(200);
    const { entries } = res.json<{ entries: HistoryEntry[] }>();
    expect(entries.map((e) => e.reason)).toEqual(['stage 2', 'canary']);
    expect(entries[0]).toMatchObject({ actor: 'alice', source: 'api', action: 'update' });
    expect(entries[0]?.before?.percentage).toBe(1);
    expect(entries[0]?.after?.percentage).toBe(5);
    expect(entries[1]).toMatchObject({ action: 'create', before: null });
  });

  it('paginates history newest first with a cursor', async () => {
    await put('paged', { percentage: 0 });
    for (let p = 1; p <= 4; p++) await patch('paged', { percentage: p });
    const first = (await get('/flags/paged/history?limit=2')).json<{ entries: HistoryEntry[]; next?: string }>();
    expect(first.entries.map((e) => e.after?.percentage)).toEqual([4, 3]);
    expect(first.next).toBeDefined();
    const second = (await get(`/flags/paged/history?limit=2&before=${encodeURIComponent(first.next ?? '')}`)).json<{ entries: HistoryEntry[]; next?: string }>();
    expect(second.entries.map((e) => e.after?.percentage)).toEqual([2, 1]);
    const third = (await get(`/flags/paged/history?limit=2&before=${encodeURIComponent(second.next ?? '')}`)).json<{ entries: HistoryEntry[]; next?: string }>();
    expect(third.entries.map((e) => e.after?.percentage)).toEqual([0]);
    expect(third.next).toBeUndefined();
  });

  it('DELETE removes the flag (204), then GET is 404 and history keeps the delete', async () => {
    await put('doomed', { percentage: 1 });
    const res = await t.app.inject({ method: 'DELETE', url: '/flags/doomed', headers: ADMIN });
    expect(res.statusCode).toBe(204);
    expect((await get('/flags/doomed')).statusCode).toBe(404);
    const history = (await get('/flags/doomed/history')).json<{ entries: HistoryEntry[] }>();
    expect(history.entries[0]).toMatchObject({ action: 'delete', after: null });
    const again = await t.app.inject({ method: 'DELETE', url: '/flags/doomed', headers: ADMIN });
    expect(again.statusCode).toBe(404);
  });

  it('DELETE with a stale If-Match is 412 and keeps the flag', async () => {
    await put('keep-me', { percentage: 1 });
    await patch('keep-me', { percentage: 2 });
    const res = await t.app.inject({ method: 'DELETE', url: '/flags/keep-me', headers: { ...ADMIN, 'if-match': '"1"' } });
    expect(res.statusCode).toBe(412);
    expect((await get('/flags/keep-me')).statusCode).toBe(200);
  });

  it('evaluates a user with decision, reason and bucket', async () => {
    await put('eval-flag', { enabled: true, percentage: 50 });
    const res = await get('/flags/eval-flag/evaluate?userId=user-42');
    expect(res.statusCode).toBe(200);
    const body = res.json<{ value: boolean; reason: string; bucket: number; threshold: number }>();
    expect(body.reason).toBe('SPLIT');
    expect(body.threshold).toBe(50_000);
    expect(body.value).toBe(body.bucket < 50_000);
    const missing = (await get('/flags/eval-flag/evaluate')).json<{ reason: string; errorCode: string }>();
    expect(missing).toMatchObject({ reason: 'DEFAULT', errorCode: 'TARGETING_KEY_MISSING' });
    expect((await get('/flags/nope/evaluate?userId=1')).statusCode).toBe(404);
  });

  it('evaluates custom stickiness from other query attributes', async () => {
    await put('by-tenant', { enabled: true, percentage: 100, stickiness: 'tenantId' });
    const res = (await get('/flags/by-tenant/evaluate?tenantId=t-7')).json<{ value: boolean; unitId: string }>();
    expect(res).toMatchObject({ value: true, unitId: 't-7' });
  });

  describe('rejects bad input with problem+json and changes nothing', () => {
    const cases: [string, unknown, string][] = [
      ['an unknown field', { percentage: 5, colour: 'red' }, 'colour'],
      ['a string enabled', { enabled: 'yes' }, 'enabled'],
      ['percentage -1', { percentage: -1 }, 'percentage'],
      ['percentage 100.0001', { percentage: 100.0001 }, 'percentage'],
      ['percentage 1.0005 (four decimals)', { percentage: 1.0005 }, 'percentage'],
      ['percentage "abc"', { percentage: 'abc' }, 'percentage'],
      ['percentage "NaN"', { percentage: 'NaN' }, 'percentage'],
      ['percentage null', { percentage: null }, 'percentage'],
      ['a read-only version', { percentage: 5, version: 3 }, 'version'],
      ['an empty groupId', { groupId: '' }, 'groupId'],
      ['a bad stickiness name', { stickiness: 'has space' }, 'stickiness'],
      ['a body key different from the URL', { key: 'other', percentage: 5 }, 'key'],
      ['an array body', [1, 2], ''],
    ];
    for (const [name, body, field] of cases) {
      it(`rejects ${name} on PATCH and PUT with 400 naming the field`, async () => {
        await put('guarded', { enabled: true, percentage: 10 });
        const before = (await get('/flags/guarded')).json<Flag>();
        for (const res of [await patch('guarded', body), await put('guarded', body)]) {
          expect(res.statusCode).toBe(400);
          expect(res.headers['content-type']).toContain('application/problem+json');
          const problem = res.json<{ type: string; title: string; status: number; detail: string; errors?: { path: string; message: string }[] }>();
          expect(problem.status).toBe(400);
          expect(problem.type).toMatch(/^https:\/\/rampart\.dev\/problems\//);
          expect(problem.detail.length).toBeGreaterThan(5);
          if (field !== '') expect(JSON.stringify(problem)).toContain(field);
        }
        expect((await get('/flags/guarded')).json<Flag>()).toEqual(before);
      });
    }

    it('rejects NaN written as a bare JSON token (invalid JSON) with 400', async () => {
      await put('guarded-json', { percentage: 10 });
      const res = await t.app.inject({ method: 'PATCH', url: '/flags/guarded-json', headers: { ...ADMIN, 'content-type': 'application/json' }, payload: '{"percentage": NaN}' });
      expect(res.statusCode).toBe(400);
      expect(res.json<{ detail: string }>().detail).toContain('not valid JSON');
      expect((await get('/flags/guarded-json')).json<Flag>().percentage).toBe(10);
    });

    it('rejects a key with spaces and a 200-character key with 400', async () => {
      const spaced = await put('has%20space', { percentage: 1 });
      expect(spaced.statusCode).toBe(400);
      expect(spaced.json<{ errors: { path: string }[] }>().errors[0]?.path).toBe('params.key');
      const long = await put('k'.repeat(200), { percentage: 1 });
      expect(long.statusCode).toBe(400);
      const huge = await put('k'.repeat(5000), { percentage: 1 });
      expect(huge.statusCode).toBe(400);
      expect(huge.headers['content-type']).toContain('application/problem+json');
      expect((await get('/flags')).json<{ flags: Flag[] }>().flags.some((f) => f.key.startsWith('kkk'))).toBe(false);
    });

    it('rejects a body over 1 MiB with 413', async () => {
      const res = await put('huge', { description: 'x'.repeat(1024 * 1024 + 10) });
      expect(res.statusCode).toBe(413);
      expect(res.headers['content-type']).toContain('application/problem+json');
      expect((await get('/flags/huge')).statusCode).toBe(404);
    });

    it('rejects a non-JSON content type with 415', async () => {
      const res = await t.app.inject({ method: 'PUT', url: '/flags/texty', headers: { ...ADMIN, 'content-type': 'text/plain' }, payload: 'percentage=5' });
      expect(res.statusCode).toBe(415);
      expect((await get('/flags/texty')).statusCode).toBe(404);
    });

    it('rejects an empty PATCH with 400', async () => {
      await put('empty-patch', { percentage: 1 });
      const res = await patch('empty-patch', {});
      expect(res.statusCode).toBe(400);
      expect(res.json<{ detail: string }>().detail).toContain('at least one');
    });

    it('rejects a malformed If-Match with 400', async () => {
      await put('bad-if-match', { percentage: 1 });
      const res = await patch('bad-if-match', { percentage: 2 }, { 'if-match': 'yesterday' });
      expect(res.statusCode).toBe(400);
      expect((await get('/flags/bad-if-match')).json<Flag>().percentage).toBe(1);
    });
  });

  it('answers a URL with a broken percent-escape with a 400 problem, before auth', async () => {
    for (const url of ['/flags/%ZZ', '/flags/%E0%A4%A', '/nope/%']) {
      const res = await t.app.inject({ method: 'GET', url });
      expect(res.statusCode, url).toBe(400);
      expect(res.headers['content-type']).toContain('application/problem+json');
      expect(res.json<{ detail: string }>().detail).toContain('not valid');
    }
  });

  it('PATCH of a missing flag is 404 and unknown routes are problem+json 404s', async () => {
    expect((await patch('ghost', { percentage: 1 })).statusCode).toBe(404);
    const res = await get('/nowhere');
    expect(res.statusCode).toBe(404);
    expect(res.headers['content-type']).toContain('application/problem+json');
  });
});
