// Composition root: `rampart serve`, `rampart guard`.
import { ConfigError, loadConfig } from './config.js';
import { startServer } from './main.js';
import { createLogger } from './telemetry.js';

const USAGE = `Usage: rampart <command>

Commands:
  serve   start the flag server (REDIS_URL set: Redis; unset: embedded store in RAMPART_DATA_DIR)
  guard   start the guard worker (not available yet)

Configuration comes from the environment; see README.md.
`;

async function serve(): Promise<number> {
  const config = loadConfig(process.env);
  const logger = createLogger(config.logLevel);
  const server = await startServer(config, logger);
  await new Promise<void>((resolve) => {
    const shutdown = (signal: NodeJS.Signals): void => {
      logger.info({ component: 'serve', signal }, 'shutting down');
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
  const [command] = argv;
  switch (command) {
    case 'serve':
      return serve();
    case 'guard':
      process.stderr.write('rampart guard: the guard worker is not available in this build yet\n');
      return 2;
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
