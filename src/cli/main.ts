// Entry point of dist/bpf-preload.js.
import { main } from './cli.js';
import { mark, timingLines } from '../timing.js';

mark('modules loaded');
process.exitCode = main(process.argv.slice(2));
mark('done');
for (const line of timingLines()) process.stderr.write(line);
