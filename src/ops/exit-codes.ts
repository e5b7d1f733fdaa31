// Exit codes of the ops commands: scripts branch on these, so they never change meaning.

/** What each exit code of `rampart flags` / `rampart rollout` means. */
export const EXIT = {
  /** The command did what it was asked. */
  ok: 0,
  /** Something unexpected: a response the CLI could not understand, a bug. */
  error: 1,
  /** Bad command line: unknown command or option, missing argument, unreadable plan file. */
  usage: 2,
  /** 401 or 403: missing, wrong or under-privileged token. */
  auth: 3,
  /** 404: no such flag (or rollout plan). */
  notFound: 4,
  /** 409 or 412: someone else changed the flag first; re-read and retry. */
  conflict: 5,
  /** 400, 413, 415 or 422: the server (or the CLI) rejected the values; nothing changed. */
  validation: 6,
  /** The server could not be reached, timed out, or answered 429 / 5xx; retrying may help. */
  unavailable: 7,
  /** Refused before sending anything: the step guard, or a declined confirmation. */
  refused: 8,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** The exit code of an HTTP error status. */
export function exitCodeForStatus(status: number): ExitCode {
  if (status === 401 || status === 403) return EXIT.auth;
  if (status === 404) return EXIT.notFound;
  if (status === 409 || status === 412) return EXIT.conflict;
  if (status === 400 || status === 413 || status === 415 || status === 422) return EXIT.validation;
  if (status === 429 || status >= 500) return EXIT.unavailable;
  return EXIT.error;
}
