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

const digest = (value: string): Buffer => hash('sha256', value, 'buffer');

/**
 * Resolves bearer tokens in constant time: every configured token is compared, equal-length
 * digests are compared with timingSafeEqual, and nothing returns early on a match.
 */
export class TokenAuthenticator {
  readonly #entries: { principal: Principal; digest: Buffer }[];
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
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
    const presented = digest(match?.[1] ?? '');
    let found: Principal | undefined;
    for (const entry of this.#entries) {
      if (timingSafeEqual(entry.digest, presented) && found === undefined) found = entry.principal;
    }
    return match === null ? undefined : found;
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
