// perf_event_open(2), for perf_event programs (attachPerfEvent): sampling a
// software or hardware counter. libc has no wrapper, so it goes through
// syscall(2) with the architecture's number.
import { SysError } from '../error.js';
import { native } from './native.js';
import { perf_event_attr } from './layouts.js';
import {
  PERF_COUNT_SW_CONTEXT_SWITCHES,
  PERF_COUNT_SW_CPU_CLOCK,
  PERF_COUNT_SW_CPU_MIGRATIONS,
  PERF_COUNT_SW_PAGE_FAULTS,
  PERF_COUNT_SW_TASK_CLOCK,
  PERF_FLAG_FD_CLOEXEC,
  PERF_TYPE_BREAKPOINT,
  PERF_TYPE_HARDWARE,
  PERF_TYPE_HW_CACHE,
  PERF_TYPE_RAW,
  PERF_TYPE_SOFTWARE,
  PERF_TYPE_TRACEPOINT,
} from './uapi.js';

// <asm/unistd.h>: x86_64's own table, and the generic one (arm64, riscv64, loongarch64).
const NR_PERF_EVENT_OPEN: Partial<Record<string, number>> = { x64: 298, arm64: 241, riscv64: 241, loong64: 241 };

/** perf_type_id values. */
export const PerfType = {
  Hardware: PERF_TYPE_HARDWARE,
  Software: PERF_TYPE_SOFTWARE,
  Tracepoint: PERF_TYPE_TRACEPOINT,
  HwCache: PERF_TYPE_HW_CACHE,
  Raw: PERF_TYPE_RAW,
  Breakpoint: PERF_TYPE_BREAKPOINT,
} as const;
/** perf_sw_ids values, for PerfType.Software. */
export const PerfSoftware = {
  CpuClock: PERF_COUNT_SW_CPU_CLOCK,
  TaskClock: PERF_COUNT_SW_TASK_CLOCK,
  PageFaults: PERF_COUNT_SW_PAGE_FAULTS,
  ContextSwitches: PERF_COUNT_SW_CONTEXT_SWITCHES,
  CpuMigrations: PERF_COUNT_SW_CPU_MIGRATIONS,
} as const;

export interface PerfEventOptions {
  /** PerfType (default Software). */
  type?: number;
  /** The counter within the type, e.g. PerfSoftware.CpuClock (the default). */
  config?: number;
  /** Samples per second (default 99), or with `period: true` events per sample. */
  frequency?: number;
  period?: boolean;
  /** Which process (default -1: all, which needs `cpu`); 0 is this thread. */
  pid?: number;
  /** Which CPU (default -1: any, which needs a `pid`). */
  cpu?: number;
}

/** Opens a perf event (perf_event_open(2)); returns its fd, close-on-exec, enabled. Close it with closeSync. */
export function openPerfEvent(options: PerfEventOptions = {}): number {
  const nr = NR_PERF_EVENT_OPEN[process.arch];
  if (nr === undefined) throw new Error(`perf_event_open: no syscall number known for ${process.arch}`);
  const { size, offsets: at, bits } = perf_event_attr;
  const attr = Buffer.alloc(size);
  attr.writeUInt32LE(options.type ?? PerfType.Software, at.type);
  attr.writeUInt32LE(size, at.size);
  attr.writeBigUInt64LE(BigInt(options.config ?? PerfSoftware.CpuClock), at.config);
  attr.writeBigUInt64LE(BigInt(options.frequency ?? 99), options.period ? at.sample_period : at.sample_freq);
  // A bitfield's bit offset counts from bit 0 of byte 0 on little-endian machines.
  if (!options.period) attr[bits.freq >> 3] |= 1 << (bits.freq & 7);
  const n = native();
  const fd = Number(n.syscallPerfEventOpen(nr, attr, options.pid ?? -1, options.cpu ?? -1, -1, PERF_FLAG_FD_CLOEXEC));
  if (fd < 0) throw new SysError('perf_event_open', `open perf event type ${options.type ?? PerfType.Software} config ${options.config ?? 0}`, n.errno());
  return fd;
}
