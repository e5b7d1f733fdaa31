// Composition root: `rampart serve`, `rampart guard`, and the ops commands `flags` and `rollout`.
import { ConfigError, loadConfig } from './config.js';
import { startGuardProcess, startServer } from './main.js';
import { processIo } from './ops/process-io.js';
import { OPS_USAGE, runOps } from './ops/run-ops.js';
import { createLogger } from './telemetry.js';

const USAGE = `Usage: rampart <command>

Commands:
  serve   start the flag server (REDIS_URL set: Redis; unset: embedded store in RAMPART_DATA_DIR)
  guard   start the guard worker alone (needs REDIS_URL); serve runs it too unless RAMPART_GUARD=off
  flags   read and change flags: list, get, set, on, off, history
  rollout drive guard rollout plans: start, status, decisions, approve, pause, resume, abort

Configuration comes from the environment; see README.md.

${OPS_USAGE}`;

async function run(start: typeof startServer | typeof startGuardProcess, component: string): Promise<number> {
  const config = loadConfig(process.env);
  const logger = createLogger(config.logLevel);
  const server = await start(config, logger);
  await new Promise<void>((resolve) => {
    const shutdown = (signal: NodeJS.Signals): void => {
      logger.info({ component, signal }, 'shutting down');
      server.stop().then(resolve, (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        resolve();
      });
    };
    process.once('SIGTERM', shutdown);
    process.once('SIGINT', shutdown);
  });
  return 0;
}

async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  if ((command === 'serve' || command === 'guard') && rest.some((a) => a === '--help' || a === '-h')) {
    process.stdout.write(USAGE);
    return 0;
  }
  switch (command) {
    case 'serve':
      return run(startServer, 'serve');
    case 'guard':
      return run(startGuardProcess, 'guard');
    case 'flags':
    case 'rollout':
      return runOps(argv, processIo());
    case undefined:
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return 0;
    default:
      process.stderr.write(`rampart: unknown command '${command}'\n\n${USAGE}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    const message = error instanceof ConfigError ? error.message : error instanceof Error ? (error.stack ?? error.message) : String(error);
    process.stderr.write(`rampart: ${message}\n`);
    process.exitCode = 1;
  },
);
