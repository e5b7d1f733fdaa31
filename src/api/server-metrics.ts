import type { Registry } from '../prometheus.js';
import type { SnapshotCache } from './snapshot-cache.js';

/**
 * Gauges read from the snapshot cache at scrape time: per-flag toggle and percentage, the
 * snapshot revision and its age.
 */
export function registerFlagGauges(registry: Registry, cache: SnapshotCache): void {
  const enabled = registry.gauge('rampart_flag_enabled', 'Master toggle per flag (1 on, 0 off).');
  const percentage = registry.gauge('rampart_flag_percentage', 'Rollout percentage per flag.');
  const revision = registry.gauge('rampart_snapshot_revision', 'Revision of the snapshot this server serves.');
  const age = registry.gauge('rampart_snapshot_age_seconds', 'Seconds since the snapshot was last confirmed against the store.');
  let known = new Set<string>();
  registry.onCollect(() => {
    const seen = new Set<string>();
    for (const flag of cache.flags()) {
      seen.add(flag.key);
      enabled.set({ flag: flag.key }, flag.enabled ? 1 : 0);
      percentage.set({ flag: flag.key }, flag.percentage);
    }
    for (const key of known) {
      if (!seen.has(key)) {
        enabled.remove({ flag: key });
        percentage.remove({ flag: key });
      }
    }
    known = seen;
    revision.set({}, cache.revision);
    age.set({}, cache.ageMs / 1000);
  });
}
