import { SpanStatusCode, trace } from '@opentelemetry/api';
import type { Span, Tracer } from '@opentelemetry/api';
import { pino } from 'pino';
import type { DestinationStream, Logger, LevelWithSilent } from 'pino';
import { asError } from './core/errors.js';

/** Instrumentation scope name for OpenTelemetry tracers and meters. */
export const TELEMETRY_SCOPE = 'rampart';

/** Paths pino blanks in every log line: tokens never reach logs. */
export const REDACTED_PATHS = [
  'req.headers.authorization',
  'headers.authorization',
  'authorization',
  'token',
  '*.token',
  'secret',
  '*.secret',
  'adminTokens',
  'sdkTokens',
];

/**
 * The root JSON logger; children carry a `component` field.
 *
 * @example
 * const log = createLogger('info').child({ component: 'api' });
 */
export function createLogger(level: LevelWithSilent, destination?: DestinationStream): Logger {
  const options = { level, redact: { paths: REDACTED_PATHS, censor: '[redacted]' }, base: { service: 'rampart' } };
  return destination === undefined ? pino(options) : pino(options, destination);
}

/** The tracer every Rampart span comes from. */
export function tracer(): Tracer {
  return trace.getTracer(TELEMETRY_SCOPE);
}

/**
 * Runs `fn` inside an active span that records errors; with no OpenTelemetry SDK installed
 * the API's no-op tracer makes this nearly free.
 *
 * @example
 * await withSpan('store.put', () => store.put(key, fields, version, meta));
 */
export async function withSpan<T>(name: string, fn: (span: Span) => Promise<T>, attributes: Record<string, string | number> = {}): Promise<T> {
  return tracer().startActiveSpan(name, { attributes }, async (span) => {
    try {
      return await fn(span);
    } catch (error) {
      span.recordException(asError(error));
      span.setStatus({ code: SpanStatusCode.ERROR });
      throw error;
    } finally {
      span.end();
    }
  });
}
