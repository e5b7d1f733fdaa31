export { bucket, bucketWithPrefix, hashPrefix, hashUnit, isValidPercentage, percentageToThousandths, thresholdFor, BUCKET_COUNT } from './bucketing.js';
export type { HashPrefix } from './bucketing.js';
export { evaluate, evaluateFlag, flagOf, unitIdOf } from './evaluate.js';
export type { Evaluation, ErrorCode, Reason } from './evaluate.js';
export { createClient, RampartClient } from './client.js';
export type { ChangeEvent, ClientEvents, ClientOptions, ClientStatus, Outcome, SnapshotStorage } from './client.js';
export { DEFAULT_STICKINESS } from './snapshot.js';
export type { EvaluationContext, FlagConfig, FlagSnapshot } from './snapshot.js';
