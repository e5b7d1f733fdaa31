import type { FastifySchemaCompiler } from 'fastify';
import { z } from 'zod';
import { RampartError } from '../core/errors.js';
import { fieldErrors } from './problem.js';

/** Route schemas are zod schemas; this compiler validates with them and reports field errors. */
export const zodValidatorCompiler: FastifySchemaCompiler<z.ZodType> = ({ schema, httpPart }) => {
  const root = httpPart === 'body' ? 'body' : httpPart === 'querystring' ? 'query' : (httpPart ?? '');
  return (data: unknown) => {
    const result = schema.safeParse(data);
    if (result.success) return { value: result.data };
    const errors = fieldErrors(result.error, root);
    const first = errors[0];
    const detail = first === undefined ? `invalid ${root}` : `${first.path}: ${first.message}${errors.length > 1 ? ` (and ${errors.length - 1} more)` : ''}`;
    return { error: new RampartError('validation', detail, { errors }) };
  };
};

/** Parses `data` with `schema` or throws a RampartError('validation') naming each bad field. */
export function parseOrThrow<T>(schema: z.ZodType<T>, data: unknown, root: string): T {
  const result = schema.safeParse(data);
  if (result.success) return result.data;
  const errors = fieldErrors(result.error, root);
  throw new RampartError('validation', errors.map((e) => `${e.path}: ${e.message}`).join('; '), { errors });
}
