// Holds the app and its responses against openapi/openapi.yaml, for any API test.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import type { FastifyInstance } from 'fastify';
import { parse } from 'yaml';

/** A JSON object read from the spec; narrowed field by field where it is used. */
export type JsonObject = Readonly<Record<string, unknown>>;

/** The parts of an OpenAPI document these helpers read. */
export interface OpenApiSpec extends JsonObject {
  readonly openapi: string;
  readonly paths: Readonly<Record<string, JsonObject>>;
}

/** The methods documented as operations (OPTIONS preflights and HEAD are not). */
export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** A light-my-request (`app.inject`) or supertest response. */
export interface ResponseLike {
  readonly statusCode?: number;
  readonly status?: number;
  readonly headers: Readonly<Record<string, string | string[] | number | undefined>>;
  /** light-my-request: the raw text; supertest: the parsed body. */
  readonly body?: unknown;
  /** supertest: the raw text. */
  readonly text?: string;
}

/** Absolute path of openapi/openapi.yaml. */
export const SPEC_PATH = fileURLToPath(new URL('../../openapi/openapi.yaml', import.meta.url));

const OPERATION_METHODS = ['get', 'put', 'post', 'delete', 'patch', 'options', 'head', 'trace'] as const;
const SPEC_ID = 'https://rampart.dev/openapi.json';
const OPENAPI_FIELDS = ['openapi', 'info', 'jsonSchemaDialect', 'servers', 'paths', 'webhooks', 'components', 'security', 'tags', 'externalDocs'];

const isObject = (value: unknown): value is JsonObject => typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * Parses openapi/openapi.yaml; each call returns a fresh object, so callers may mutate it.
 *
 * @example
 * const spec = loadSpec();
 */
export function loadSpec(): OpenApiSpec {
  const doc: unknown = parse(readFileSync(SPEC_PATH, 'utf8'));
  if (!isObject(doc) || typeof doc.openapi !== 'string' || !isObject(doc.paths)) {
    throw new Error(`${SPEC_PATH} is not an OpenAPI document (no openapi version or paths)`);
  }
  const paths: Record<string, JsonObject> = {};
  for (const [path, item] of Object.entries(doc.paths)) {
    if (!isObject(item)) throw new Error(`${SPEC_PATH}: path item ${path} is not an object`);
    paths[path] = item;
  }
  return { ...doc, openapi: doc.openapi, paths };
}

/** `/flags/:key` as an OpenAPI path template: `/flags/{key}`. */
export function toPathTemplate(fastifyUrl: string): string {
  return fastifyUrl.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
}

/**
 * Every operation the document describes, as `"METHOD /path/{param}"`.
 *
 * @example
 * specRoutes().has('GET /flags/{key}'); // true
 */
export function specRoutes(spec: OpenApiSpec = loadSpec()): Set<string> {
  const routes = new Set<string>();
  for (const [path, item] of Object.entries(spec.paths)) {
    for (const method of OPERATION_METHODS) {
      if (item[method] !== undefined) routes.add(`${method.toUpperCase()} ${path}`);
    }
  }
  return routes;
}

// One line of fastify's route tree: indentation, branch, node label, then " (GET, HEAD)" on
// nodes that hold routes (and a constraints object when a route has constraints).
const TREE_LINE = /^((?:│ {3}| {4})*)(?:├── |└── )(.*)$/u;
const NODE = /^(.*?)(?: \(([A-Z]+(?:, [A-Z]+)*)\)(?: \{.*\})?)?$/;

/**
 * Every route the app registers, as `"METHOD /path/{param}"`, without the HEAD routes fastify
 * adds for GETs and without OPTIONS (CORS preflights).
 *
 * Fastify 5 has no public route list, and buildApp registers its routes before a test could
 * add an `onRoute` hook, so this reads the router's own listing: `app.printRoutes()` prints
 * the radix tree one node per line, and a route's path is its node's label appended to the
 * labels of the nodes above it. Each route read is confirmed with `app.hasRoute`.
 *
 * @example
 * const t = await buildTestApp();
 * appRoutes(t.app).has('PUT /flags/{key}'); // true
 */
export function appRoutes(app: FastifyInstance): Set<string> {
  const routes = new Set<string>();
  const listing = app.printRoutes();
  const labels: string[] = [];
  for (const line of listing.split('\n')) {
    if (line.trim() === '') continue;
    const tree = TREE_LINE.exec(line);
    if (tree === null) throw new Error(`unexpected line in app.printRoutes(): ${JSON.stringify(line)}`);
    const depth = (tree[1] ?? '').length / 4;
    const node = NODE.exec(tree[2] ?? '');
    labels.length = depth;
    labels.push(node?.[1] ?? '');
    const url = labels.join('');
    for (const method of node?.[2]?.split(', ') ?? []) {
      if (method === 'HEAD' || method === 'OPTIONS') continue;
      // Cross-checks the reconstruction, so a change in fastify's listing format fails loudly.
      if (!app.hasRoute({ method, url })) throw new Error(`misread app.printRoutes(): no route ${method} ${url}\n${listing}`);
      routes.add(`${method} ${toPathTemplate(url)}`);
    }
  }
  if (routes.size === 0) throw new Error(`no routes found in app.printRoutes():\n${listing}`);
  return routes;
}

/** `a` minus `b`, sorted. */
export function difference(a: ReadonlySet<string>, b: ReadonlySet<string>): string[] {
  return [...a].filter((x) => !b.has(x)).sort();
}

const escapePointer = (segment: string): string => encodeURIComponent(segment.replace(/~/g, '~0').replace(/\//g, '~1'));

interface Located {
  readonly value: JsonObject;
  /** JSON pointer (URI fragment form) of `value` in the document. */
  readonly pointer: string;
}

/** Follows a local `$ref` (`#/components/...`) to the object it names. */
function deref(spec: JsonObject, located: Located): Located {
  let current = located;
  for (let hops = 0; typeof current.value.$ref === 'string'; hops++) {
    const ref = current.value.$ref;
    if (!ref.startsWith('#/') || hops > 10) throw new Error(`cannot follow $ref ${ref}`);
    let target: unknown = spec;
    for (const part of ref.slice(2).split('/')) {
      const key = decodeURIComponent(part).replace(/~1/g, '/').replace(/~0/g, '~');
      target = isObject(target) ? target[key] : undefined;
    }
    if (!isObject(target)) throw new Error(`$ref ${ref} does not name an object`);
    current = { value: target, pointer: ref };
  }
  return current;
}

const validators = new WeakMap<OpenApiSpec, Ajv2020>();

function ajvFor(spec: OpenApiSpec): Ajv2020 {
  let ajv = validators.get(spec);
  if (ajv === undefined) {
    // The document itself is the schema resource, so every `#/components/...` $ref resolves.
    // Its top-level fields and OpenAPI's schema extensions are declared as annotations, so
    // strict mode still catches a misspelt keyword inside a schema.
    ajv = new Ajv2020({ allErrors: true, strict: true, validateSchema: false });
    ajv.addVocabulary([...OPENAPI_FIELDS, 'example', 'discriminator', 'xml']);
    addFormats.default(ajv);
    ajv.addSchema({ ...spec, $id: SPEC_ID });
    validators.set(spec, ajv);
  }
  return ajv;
}

function headerValue(response: ResponseLike, name: string): string | undefined {
  const value = response.headers[name] ?? response.headers[name.toLowerCase()];
  if (value === undefined) return undefined;
  return Array.isArray(value) ? value.join(', ') : String(value);
}

function bodyText(response: ResponseLike): string {
  if (typeof response.text === 'string') return response.text;
  if (typeof response.body === 'string') return response.body;
  if (response.body === undefined || response.body === null) return '';
  return JSON.stringify(response.body);
}

const isJsonMediaType = (type: string): boolean => type === 'application/json' || type.endsWith('+json');

/**
 * Throws unless `response` is what the document promises for `method pathTemplate`: the status
 * is documented for that operation, the content type is one documented for that status, and a
 * JSON body validates against its schema (ajv, JSON Schema 2020-12, $refs resolved). Bodies of
 * other types (text/event-stream, text/plain) are checked by type only.
 *
 * @example
 * expectResponseMatches(loadSpec(), 'GET', '/flags/{key}', await app.inject({ method: 'GET', url: '/flags/a' }));
 */
export function expectResponseMatches(spec: OpenApiSpec, method: HttpMethod, pathTemplate: string, response: ResponseLike): void {
  const status = response.statusCode ?? response.status;
  if (status === undefined) throw new Error('the response has neither statusCode nor status');
  const where = `${method} ${pathTemplate} -> ${status}`;
  const item = spec.paths[pathTemplate];
  if (item === undefined) throw new Error(`${pathTemplate} is not a documented path; documented: ${Object.keys(spec.paths).join(', ')}`);
  const lower = method.toLowerCase();
  const operation = item[lower];
  if (!isObject(operation) || !isObject(operation.responses)) throw new Error(`${method} ${pathTemplate} is not a documented operation`);
  const responses = operation.responses;
  const key = [String(status), `${String(status).charAt(0)}XX`, 'default'].find((k) => isObject(responses[k]));
  if (key === undefined) {
    throw new Error(`${where}: status ${status} is not documented (documented: ${Object.keys(responses).join(', ')}); body: ${bodyText(response).slice(0, 500)}`);
  }
  const basePointer = `#/paths/${escapePointer(pathTemplate)}/${lower}/responses/${escapePointer(key)}`;
  const documented = deref(spec, { value: responses[key] as JsonObject, pointer: basePointer });
  const content = isObject(documented.value.content) ? documented.value.content : {};
  const types = Object.keys(content);
  const text = bodyText(response);
  if (types.length === 0) {
    if (text !== '') throw new Error(`${where}: documented without a body, but got ${JSON.stringify(text.slice(0, 200))}`);
    return;
  }
  const contentType = headerValue(response, 'content-type');
  const mediaType = contentType?.split(';')[0]?.trim().toLowerCase() ?? '';
  const documentedType = types.find((t) => t.toLowerCase() === mediaType);
  if (documentedType === undefined) {
    throw new Error(`${where}: content type ${JSON.stringify(contentType ?? null)} is not documented (documented: ${types.join(', ')})`);
  }
  if (!isJsonMediaType(mediaType)) return;
  const media = content[documentedType];
  if (!isObject(media) || media.schema === undefined) return;
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new Error(`${where}: the ${mediaType} body is not JSON: ${text.slice(0, 200)}`);
  }
  const ajv = ajvFor(spec);
  const schemaRef = `${SPEC_ID}${documented.pointer}/content/${escapePointer(documentedType)}/schema`;
  const validate = ajv.getSchema(schemaRef);
  if (validate === undefined) throw new Error(`${where}: cannot compile the schema at ${schemaRef}`);
  if (validate(body) !== true) {
    const errors = ajv.errorsText(validate.errors, { separator: '\n  ', dataVar: 'body' });
    throw new Error(`${where}: the body does not match the documented ${documentedType} schema:\n  ${errors}\nbody: ${JSON.stringify(body).slice(0, 1000)}`);
  }
}

/**
 * Throws unless `value` validates against `#/components/schemas/<name>`; for payloads that are
 * not whole responses, such as the `data` of a server-sent event.
 *
 * @example
 * expectSchemaMatches(loadSpec(), 'Snapshot', JSON.parse(event.data));
 */
export function expectSchemaMatches(spec: OpenApiSpec, name: string, value: unknown): void {
  const ajv = ajvFor(spec);
  const validate = ajv.getSchema(`${SPEC_ID}#/components/schemas/${escapePointer(name)}`);
  if (validate === undefined) throw new Error(`#/components/schemas/${name} is not in the document`);
  if (validate(value) !== true) {
    const errors = ajv.errorsText(validate.errors, { separator: '\n  ', dataVar: 'value' });
    throw new Error(`the value does not match #/components/schemas/${name}:\n  ${errors}\nvalue: ${JSON.stringify(value).slice(0, 1000)}`);
  }
}

let shared: OpenApiSpec | undefined;

/**
 * expectSchemaMatches against openapi/openapi.yaml.
 *
 * @example
 * assertSchema(JSON.parse(event.data), 'StreamChange');
 */
export function assertSchema(value: unknown, name: string): void {
  shared ??= loadSpec();
  expectSchemaMatches(shared, name, value);
}

/**
 * expectResponseMatches against openapi/openapi.yaml (parsed once per test file).
 *
 * @example
 * const res = await t.app.inject({ method: 'GET', url: '/flags/new-checkout' });
 * assertDocumented(res, 'GET', '/flags/{key}');
 */
export function assertDocumented(response: ResponseLike, method: HttpMethod, pathTemplate: string): void {
  shared ??= loadSpec();
  expectResponseMatches(shared, method, pathTemplate, response);
}
