// Run-time statistics of programs: turning them on for as long as an fd is
// held (BPF_ENABLE_STATS), and reading a program's counters, which the
// kernel sums over CPUs only in bpf_prog_info; a map's memlock bytes, which
// the kernel reports only in fdinfo. Also the names libbpf gives program, map
// and link types.
import { readFileSync } from 'node:fs';
import { constants } from 'node:os';
import { callSys } from './sys/call.js';
import { mapFdById, progFdById, withFd } from './info.js';
import { SysError } from './error.js';
import { native } from './sys/native.js';
import { BPF_STATS_RUN_TIME } from './sys/uapi.js';
import { bpf_prog_info } from './sys/layouts.js';

const { ENOENT } = constants.errno;

/**
 * Turns on run-time statistics (run count, run time) for every program until
 * the returned fd is closed, or this process dies: the kernel drops them with
 * the last holder, unlike the kernel.bpf_stats_enabled sysctl.
 */
export function enableRunTimeStats(): number {
  return callSys('enable BPF run-time statistics (BPF_ENABLE_STATS)', () => native().bpf_enable_stats(BPF_STATS_RUN_TIME));
}

export interface ProgRunStats {
  runCount: bigint;
  runTimeNs: bigint;
  recursionMisses: bigint;
}

// Older kernels fill less of struct bpf_prog_info and leave the rest 0
// (run_time_ns, ...: 5.12+).
const infoBuf = Buffer.alloc(bpf_prog_info.size);
const infoLen: [number] = [bpf_prog_info.size];

/** `read` of an fd of the object with this id (opened by `open`, closed after); null once the object is gone. */
function withIdFd<T>(open: (id: number) => number, id: number, read: (fd: number) => T): T | null {
  let fd: number;
  try {
    fd = open(id);
  } catch (err) {
    if (err instanceof SysError && err.errno === ENOENT) return null;
    throw err;
  }
  return withFd(fd, read);
}

/** The run counters of the program with this id; null once it is gone. */
export function progRunStatsById(id: number): ProgRunStats | null {
  return withIdFd(progFdById, id, (fd) => {
    infoBuf.fill(0);
    infoLen[0] = bpf_prog_info.size;
    callSys(`get program info of id ${id}`, () => native().bpf_obj_get_info_by_fd(fd, infoBuf, infoLen));
    return {
      runTimeNs: infoBuf.readBigUInt64LE(bpf_prog_info.offsets.run_time_ns),
      runCount: infoBuf.readBigUInt64LE(bpf_prog_info.offsets.run_cnt),
      recursionMisses: infoBuf.readBigUInt64LE(bpf_prog_info.offsets.recursion_misses),
    };
  });
}

const MEMLOCK_LINE = /^memlock:\s+(\d+)$/m;

/**
 * The memlock bytes of the map with this id, as /proc/PID/fdinfo shows them
 * (6.5+: what the map's memory use is now, bpf_map_memory_usage; before: an
 * estimate from key, value and max entries, fixed at creation); null once
 * the map is gone, or if the kernel shows no memlock line.
 */
export function mapMemlockById(id: number): number | null {
  return withIdFd(mapFdById, id, (fd) => {
    const m = MEMLOCK_LINE.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'latin1'));
    return m ? Number(m[1]) : null;
  });
}

/** libbpf's name of a bpf_prog_type ("kprobe", "tracing", ...), or "unknown_N". */
export const progTypeName = (type: number): string => native().libbpf_bpf_prog_type_str(type) ?? `unknown_${type}`;
/** libbpf's name of a bpf_map_type ("hash", "array", ...), or "unknown_N". */
export const mapTypeName = (type: number): string => native().libbpf_bpf_map_type_str(type) ?? `unknown_${type}`;
/** libbpf's name of a bpf_link_type ("tracing", "iter", ...), or "unknown_N". */
export const linkTypeName = (type: number): string => native().libbpf_bpf_link_type_str(type) ?? `unknown_${type}`;

/** The kernel's page size: what a program's memlock pages are counted in. */
export const pageSize = (): number => native().getpagesize();
