// Composition root: `rampart serve`, `rampart guard`.
const USAGE = `Usage: rampart <command>

Commands:
  serve   start the flag server
  guard   start the guard worker
`;

function main(argv: readonly string[]): number {
  const [command] = argv;
  switch (command) {
    case 'serve':
    case 'guard':
      process.stdout.write(`rampart ${command}: not available yet in this build; see README.md for what works today.\n`);
      return 0;
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

process.exitCode = main(process.argv.slice(2));
