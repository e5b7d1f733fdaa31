/** A held lease: a fencing token that grows with every acquisition, and the holder id. */
export interface LeaseGrant {
  readonly token: number;
  readonly holder: string;
}

/**
 * Who may act: exactly one guard holds the lease at a time and renews it; writes carry its token.
 *
 * @example
 * const grant = await lease.acquire(); if (grant !== undefined && (await lease.renew(grant))) { ... }
 */
export interface Lease {
  /** Resolves undefined while another worker holds the lease. */
  acquire(): Promise<LeaseGrant | undefined>;
  /** False when the lease was lost. */
  renew(grant: LeaseGrant): Promise<boolean>;
  release(grant: LeaseGrant): Promise<void>;
  close(): Promise<void>;
}

/**
 * The lease of a single-process (embedded store) install: always granted to the one worker.
 *
 * @example
 * const lease = createInProcessLease();
 */
export function createInProcessLease(): Lease {
  let token = 0;
  let held: string | undefined;
  return {
    async acquire() {
      if (held !== undefined) return undefined;
      token += 1;
      held = `${token}:in-process`;
      return { token, holder: held };
    },
    async renew(grant) {
      return held === grant.holder;
    },
    async release(grant) {
      if (held === grant.holder) held = undefined;
    },
    async close() {
      held = undefined;
    },
  };
}
