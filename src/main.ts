// Entry point of dist/bpf-preload.js.
import { main } from './cli.js';

process.exitCode = main(process.argv.slice(2));
