import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import type { ZodError } from 'zod';
import { RampartError } from '../core/errors.js';
import type { ErrorCode, FieldError } from '../core/errors.js';

/** Base of the stable problem `type` URIs; the docs explain each one. */
export const PROBLEM_BASE = 'https://rampart.dev/problems/';

const STATUS: Record<ErrorCode, number> = {
  validation: 400,
  unauthorized: 401,
  forbidden: 403,
  'not-found': 404,
  conflict: 409,
  'already-exists': 412,
  'version-mismatch': 412,
  'payload-too-large': 413,
  'unsupported-media-type': 415,
  'rate-limited': 429,
  internal: 500,
  'store-unavailable': 503,
};

const TITLE: Record<ErrorCode, string> = {
  validation: 'Invalid request',
  unauthorized: 'Missing or invalid token',
  forbidden: 'Token not allowed here',
  'not-found': 'Not found',
  conflict: 'Conflict',
  'already-exists': 'Already exists',
  'version-mismatch': 'Version mismatch',
  'payload-too-large': 'Payload too large',
  'unsupported-media-type': 'Unsupported media type',
  'rate-limited': 'Too many requests',
  internal: 'Internal error',
  'store-unavailable': 'Store unavailable',
};

/** RFC 9457 problem details. */
export interface Problem {
  readonly type: string;
  readonly title: string;
  readonly status: number;
  readonly detail: string;
  readonly instance?: string;
  readonly errors?: readonly FieldError[];
}

/** Field errors of a zod failure, with JSON-pointer-like dotted paths. */
export function fieldErrors(error: ZodError, root: string): FieldError[] {
  return error.issues.map((issue) => ({
    path: [root, ...issue.path.map(String)].filter((p) => p !== '').join('.'),
    message: issue.message,
  }));
}

/** The problem for a RampartError. */
export function problemOf(error: RampartError, instance?: string): Problem {
  const status = STATUS[error.code];
  return {
    type: `${PROBLEM_BASE}${error.code}`,
    title: TITLE[error.code],
    status,
    detail: error.message,
    ...(instance === undefined ? {} : { instance }),
    ...(error.errors.length > 0 ? { errors: error.errors } : {}),
  };
}

// Fastify's own errors (body parsing, limits, content type) mapped to Rampart codes.
function fromFastify(error: FastifyError): RampartError | undefined {
  switch (error.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new RampartError('payload-too-large', 'request body is larger than the 1 MiB limit');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new RampartError('unsupported-media-type', 'send the body as application/json');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new RampartError('validation', 'the request body is empty; send a JSON object');
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new RampartError('validation', 'Content-Length does not match the body');
    default:
      break;
  }
  if (error instanceof SyntaxError || error.code === 'FST_ERR_CTP_INVALID_JSON_BODY') {
    return new RampartError('validation', `the request body is not valid JSON: ${error.message}`);
  }
  if (error.statusCode === 404) return new RampartError('not-found', error.message);
  if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) {
    return new RampartError('validation', error.message);
  }
  return undefined;
}

/** Sends `problem` as application/problem+json. */
export function sendProblem(reply: FastifyReply, problem: Problem): FastifyReply {
  return reply.code(problem.status).type('application/problem+json').send(problem);
}

/** The one error handler: maps codes to statuses and hides the message of every 5xx. */
export function errorHandler(error: FastifyError, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const known = error instanceof RampartError ? error : fromFastify(error);
  if (known === undefined || STATUS[known.code] >= 500) {
    const code = known?.code ?? 'internal';
    request.log.error({ err: error, reqId: request.id, method: request.method, url: request.url }, 'request failed');
    const detail = code === 'store-unavailable' ? 'the flag store cannot be reached; retry shortly' : 'an unexpected error occurred';
    if (code === 'store-unavailable') void reply.header('retry-after', '1');
    return sendProblem(reply, problemOf(new RampartError(code, detail), request.url));
  }
  return sendProblem(reply, problemOf(known, request.url));
}
