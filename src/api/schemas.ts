import { isValidPercentage } from '@rampart/sdk';
import { z } from 'zod';
import { FLAG_KEY_PATTERN } from '../core/flag.js';

export const flagKey = z
  .string()
  .regex(FLAG_KEY_PATTERN, 'a flag key is 1-128 characters of a-z, 0-9, ".", "_" and "-", starting with a letter or digit');

export const keyParams = z.object({ key: flagKey });

const percentage = z
  .number({ error: (issue) => (issue.input === undefined ? 'percentage is required' : `percentage must be a number, not ${typeof issue.input}`) })
  .refine(isValidPercentage, 'percentage must be between 0 and 100 with at most 3 decimals (e.g. 12.345)');

const attributeName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/, 'an attribute name is 1-64 characters of letters, digits, "_", "." and "-"');

// The printable-text rule keeps control characters out of salts and history.
const printable = (max: number) =>
  z.string().max(max, `at most ${max} characters`).regex(/^[^\p{Cc}]*$/u, 'control characters are not allowed');

const editable = {
  description: printable(1000),
  enabled: z.boolean(),
  percentage,
  groupId: printable(256).min(1, 'groupId must not be empty'),
  stickiness: attributeName,
  reason: printable(500),
};

const READ_ONLY = ['version', 'updatedAt', 'updatedBy'] as const;

function rejectReadOnly(value: Record<string, unknown>, ctx: z.RefinementCtx): void {
  for (const field of READ_ONLY) {
    if (field in value) {
      ctx.addIssue({
        code: 'custom',
        path: [field],
        message: field === 'version' ? 'version is read-only; send If-Match: "<version>" for a conditional write' : `${field} is read-only`,
      });
    }
  }
}

const readOnlyFields = { key: flagKey.optional(), version: z.unknown().optional(), updatedAt: z.unknown().optional(), updatedBy: z.unknown().optional() };

// PUT and PATCH accept the same fields; they differ only in what an omitted field means.
const bodyShape = {
  ...readOnlyFields,
  description: editable.description.optional(),
  enabled: editable.enabled.optional(),
  percentage: editable.percentage.optional(),
  groupId: editable.groupId.optional(),
  stickiness: editable.stickiness.optional(),
  reason: editable.reason.optional(),
};

/** PUT body: the whole flag; omitted fields take their defaults. */
export const putFlagBody = z.strictObject(bodyShape).superRefine(rejectReadOnly);

/** PATCH body: only the fields to change, at least one. */
export const patchFlagBody = z
  .strictObject(bodyShape)
  .superRefine(rejectReadOnly)
  .refine(
    (body) => ['description', 'enabled', 'percentage', 'groupId', 'stickiness'].some((f) => f in body),
    'send at least one of description, enabled, percentage, groupId, stickiness',
  );

export type PutFlagBody = z.infer<typeof putFlagBody>;
export type PatchFlagBody = z.infer<typeof patchFlagBody>;

export const historyQuery = z.strictObject({
  limit: z.coerce.number().int('limit must be a whole number').min(1).max(200).default(50),
  before: z.string().min(1).max(200).optional(),
});

/** Evaluation attributes as query parameters: `?userId=u-1&tenantId=t-7`. */
export const evaluateQuery = z.record(attributeName, z.string().max(1024));

export const changeReason = printable(500);
