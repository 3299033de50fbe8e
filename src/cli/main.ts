// Entry point of dist/bpf-preload.js.
import { main } from './cli.js';
import { mark, reportTiming } from './timing.js';

mark('modules loaded');
process.exitCode = main(process.argv.slice(2));
mark('done');
reportTiming();
