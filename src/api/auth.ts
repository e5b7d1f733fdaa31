import { hash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { RampartError } from '../core/errors.js';

/** Who may call a route: `admin` (admin tokens), `sdk` (SDK or admin tokens) or `public`. */
export type Access = 'admin' | 'sdk' | 'public';

export interface TokenEntry {
  readonly name: string;
  readonly secret: string;
}

export interface AuthOptions {
  readonly adminTokens: readonly TokenEntry[];
  readonly sdkTokens: readonly TokenEntry[];
}

/** The caller a request was authenticated as. */
export interface Principal {
  readonly name: string;
  readonly role: 'admin' | 'sdk' | 'anonymous';
}

declare module 'fastify' {
  interface FastifyContextConfig {
    access?: Access;
  }
  interface FastifyRequest {
    principal: Principal;
  }
}

const ANONYMOUS: Principal = Object.freeze({ name: 'anonymous', role: 'anonymous' });

const BEARER = /^Bearer\s+(\S+)\s*$/i;

const digest = (value: string): Buffer => hash('sha256', value, 'buffer');

/**
 * Resolves bearer tokens. A token seen for the first time is compared in constant time: every
 * configured token's digest is compared with timingSafeEqual, and nothing returns early on a
 * match. A token that matched is then remembered by its exact string, so a client's later
 * requests skip the hashing (a measurable share of a cheap request). Only matches are remembered,
 * so the map never holds more entries than there are configured tokens, and a wrong token always
 * takes the constant-time path; that a right token is answered faster tells nothing the 200 does
 * not.
 */
export class TokenAuthenticator {
  readonly #entries: { principal: Principal; digest: Buffer }[];
  readonly #matched = new Map<string, Principal>();
  readonly open: boolean;

  constructor(options: AuthOptions) {
    this.#entries = [
      ...options.adminTokens.map((t) => ({ principal: { name: t.name, role: 'admin' as const }, digest: digest(t.secret) })),
      ...options.sdkTokens.map((t) => ({ principal: { name: t.name, role: 'sdk' as const }, digest: digest(t.secret) })),
    ];
    this.open = options.adminTokens.length === 0;
  }

  /** The principal for an Authorization header, or undefined when no token matches. */
  resolve(authorization: string | undefined): Principal | undefined {
    if (this.open) return ANONYMOUS;
    // The usual header, `Bearer <a token seen before>`, resolves without the regular expression.
    if (authorization?.startsWith('Bearer ') === true) {
      const seen = this.#matched.get(authorization.slice(7));
      if (seen !== undefined) return seen;
    }
    const token = BEARER.exec(authorization ?? '')?.[1];
    if (token === undefined) return undefined;
    const presented = digest(token);
    let found: Principal | undefined;
    for (const entry of this.#entries) {
      if (timingSafeEqual(entry.digest, presented) && found === undefined) found = entry.principal;
    }
    if (found !== undefined) this.#matched.set(token, found);
    return found;
  }

  /**
   * Enforces a route's access rule on a request: sets `request.principal`, or throws the 401 or
   * 403 RampartError (with the WWW-Authenticate header set on `reply`). Synchronous, so the app's
   * single onRequest hook can call it without a promise per request.
   */
  authorize(request: FastifyRequest, reply: FastifyReply, access: Access): void {
    if (access === 'public') {
      request.principal = ANONYMOUS;
      return;
    }
    const principal = this.resolve(request.headers.authorization);
    if (principal === undefined) {
      void reply.header('www-authenticate', 'Bearer realm="rampart"');
      throw new RampartError('unauthorized', 'send a valid token as "Authorization: Bearer <token>"');
    }
    if (access === 'admin' && principal.role === 'sdk') {
      throw new RampartError('forbidden', 'SDK tokens may read /sdk/* and /ofrep/* only; use an admin token for this route');
    }
    request.principal = principal;
  }
}
