// libbpf reports through one process-wide print callback. We install ours
// once and route each message into the collector of the operation running at
// that moment, so an error can carry exactly the lines its operation caused.
import { native, type Pointer } from './sys/native.js';
import { LIBBPF_DEBUG, LIBBPF_INFO, LIBBPF_WARN } from './sys/uapi.js';

/** libbpf_print_level: LIBBPF_WARN, LIBBPF_INFO, LIBBPF_DEBUG. A plain object, not an enum: consumers compile with isolatedModules. */
export const LogLevel = {
  Warn: LIBBPF_WARN,
  Info: LIBBPF_INFO,
  Debug: LIBBPF_DEBUG,
} as const;
export type LogLevel = (typeof LogLevel)[keyof typeof LogLevel];

let installed = false;
let sink: string[] | null = null;
let maxLevel: LogLevel = LogLevel.Info;
let scratch: Buffer | undefined;
let echo: ((line: string) => void) | null = null;

function onPrint(level: number, fmt: Pointer, args: Pointer): number {
  // Formatting costs a native call; skip what nobody will read.
  if (level > maxLevel || (sink === null && echo === null)) return 0;
  // A failed load prints the whole verifier log as one message.
  scratch ??= Buffer.allocUnsafe(1 << 20); // pages stay untouched until written
  const n = native().vsnprintf(scratch, scratch.length, fmt, args);
  if (n <= 0) return 0;
  const text = scratch.toString('utf8', 0, Math.min(n, scratch.length - 1));
  for (const line of text.split('\n')) {
    if (line === '') continue;
    sink?.push(line);
    echo?.(line);
  }
  return 0;
}

function install(): void {
  if (installed) return;
  const n = native();
  n.libbpf_set_print(n.register(onPrint));
  installed = true;
}

/**
 * Sets how much of libbpf's output is kept: Info by default; Debug costs a
 * formatted message per relocation and probe. `onLine`, if given, also sees
 * every kept line as it arrives (for --verbose).
 */
export function configureLog(level: LogLevel, onLine: ((line: string) => void) | null = null): void {
  maxLevel = level;
  echo = onLine;
  install();
}

/** Runs `fn` with libbpf's messages collected; returns its result and the lines. */
export function captureLog<T>(fn: () => T): { value: T; log: string[] } {
  install();
  const outer = sink;
  const lines: string[] = [];
  sink = lines;
  try {
    return { value: fn(), log: lines };
  } finally {
    sink = outer;
    outer?.push(...lines);
  }
}
