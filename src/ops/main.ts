// Runs the ops commands on their own (`node --conditions=rampart-source --import tsx src/ops/main.ts
// flags list`) until src/cli.ts routes `rampart flags` and `rampart rollout` here.
import { processIo } from './process-io.js';
import { runOps } from './run-ops.js';

process.exitCode = await runOps(process.argv.slice(2), processIo());
