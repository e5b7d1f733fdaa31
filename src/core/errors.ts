/** Stable error codes; only the transport maps them to protocol statuses. */
export type ErrorCode =
  | 'validation'
  | 'not-found'
  | 'version-mismatch'
  | 'already-exists'
  | 'unauthorized'
  | 'forbidden'
  | 'payload-too-large'
  | 'unsupported-media-type'
  | 'rate-limited'
  | 'store-unavailable'
  | 'conflict'
  | 'internal';

/** A field-level validation message. */
export interface FieldError {
  readonly path: string;
  readonly message: string;
}

/**
 * The one error base class: a string code, a human detail, optional field errors and a cause.
 *
 * @example
 * throw new RampartError('not-found', `flag 'x' does not exist`);
 */
export class RampartError extends Error {
  readonly code: ErrorCode;
  readonly errors: readonly FieldError[];

  constructor(code: ErrorCode, detail: string, options: { errors?: readonly FieldError[]; cause?: unknown } = {}) {
    super(detail, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'RampartError';
    this.code = code;
    this.errors = options.errors ?? [];
  }
}

/**
 * Whether `error` says the store could not be reached (a 503): such a write's outcome is unknown.
 *
 * @example
 * if (isStoreUnavailable(error)) reply.header('retry-after', '1');
 */
export function isStoreUnavailable(error: unknown): error is RampartError {
  return error instanceof RampartError && error.code === 'store-unavailable';
}

/**
 * A thrown value as an Error (anything can be thrown; loggers and onError callbacks take Errors).
 *
 * @example
 * promise.catch((error: unknown) => onError(asError(error)));
 */
export function asError(value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value));
}
