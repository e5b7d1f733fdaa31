import type { FastifyRequest } from 'fastify';
import { RampartError } from '../core/errors.js';

/** A strong ETag for a number: `"12"`. */
export const etag = (n: number): string => `"${n}"`;

/** The version an If-Match header names, `'*'`, or undefined when absent. */
export function ifMatch(request: FastifyRequest): number | '*' | undefined {
  return parseTag(request.headers['if-match'], 'If-Match');
}

/** Whether If-None-Match is `*` (create only); other values are refused on writes. */
export function ifNoneMatchAny(request: FastifyRequest): boolean {
  const value = request.headers['if-none-match'];
  if (value === undefined) return false;
  if (value.trim() === '*') return true;
  throw new RampartError('validation', 'If-None-Match on a write must be "*" (create only)', {
    errors: [{ path: 'headers.if-none-match', message: 'expected "*"' }],
  });
}

/** Whether an If-None-Match header matches the tag `current` (for 304s). */
export function notModified(request: FastifyRequest, current: string): boolean {
  const value = request.headers['if-none-match'];
  if (value === undefined) return false;
  // A client revalidating what it was sent names exactly that tag: no list to split.
  if (value === current) return true;
  return value.split(',').some((tag) => {
    const t = tag.trim().replace(/^W\//, '');
    return t === '*' || t === current;
  });
}

/**
 * The number an entity tag names (`"12"`, `W/"12"`, or a bare `12`), or undefined for anything else.
 *
 * @example
 * tagNumber('W/"12"'); // 12
 */
export function tagNumber(value: string): number | undefined {
  const match = /^(?:W\/)?"?(\d{1,15})"?$/.exec(value.trim());
  return match?.[1] === undefined ? undefined : Number(match[1]);
}

function parseTag(value: string | undefined, header: string): number | '*' | undefined {
  if (value === undefined) return undefined;
  if (value.trim() === '*') return '*';
  const n = tagNumber(value);
  if (n === undefined) {
    throw new RampartError('validation', `${header} must be a flag version such as "3" (as sent in ETag)`, {
      errors: [{ path: `headers.${header.toLowerCase()}`, message: 'expected a quoted version number' }],
    });
  }
  return n;
}
