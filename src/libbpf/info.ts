// File-descriptor level access to objects already in the kernel: pinned
// paths, ids, and the *_info structs of programs, maps and links. Failures
// are the kernel's errnos, as SysError.
import { constants } from 'node:os';
import { closeSync } from 'node:fs';
import { callSys } from './sys/call.js';
import { native } from './sys/native.js';
import { BPF_OBJ_NAME_LEN } from './sys/uapi.js';
import { bpf_link_info, bpf_map_info, bpf_prog_info } from './sys/layouts.js';

const { ENOENT } = constants.errno;

export interface ProgInfo {
  id: number;
  /** bpf_prog_type */
  type: number;
  /** The kernel's 16-byte name (truncated). */
  name: string;
  btfId: number;
  mapIds: number[];
}

export interface MapInfo {
  id: number;
  /** bpf_map_type */
  type: number;
  name: string;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
}

export interface LinkInfo {
  id: number;
  /** bpf_link_type (BPF_LINK_TYPE_ITER, ...: see uapi.ts) */
  type: number;
  progId: number;
}

function cString(buf: Buffer, offset: number, len: number): string {
  const end = buf.indexOf(0, offset);
  return buf.toString('utf8', offset, end < 0 || end > offset + len ? offset + len : end);
}

function getInfo(what: string, fd: number, size: number, prepare?: (buf: Buffer) => void): Buffer {
  const buf = Buffer.alloc(size);
  prepare?.(buf);
  const len: [number] = [size];
  callSys(`get ${what} info of fd ${fd}`, () => native().bpf_obj_get_info_by_fd(fd, buf, len));
  return buf;
}

/** bpf_prog_info of the program behind `fd`. */
export function progInfo(fd: number): ProgInfo {
  // First call learns how many map ids there are, the second fetches them.
  const { size, offsets: at } = bpf_prog_info;
  const head = getInfo('program', fd, size);
  const nrMapIds = head.readUInt32LE(at.nr_map_ids);
  let mapIds: number[] = [];
  if (nrMapIds > 0) {
    const ids = Buffer.alloc(4 * nrMapIds);
    getInfo('program', fd, size, (buf) => {
      buf.writeUInt32LE(nrMapIds, at.nr_map_ids);
      buf.writeBigUInt64LE(native().addressOf(ids), at.map_ids);
    });
    mapIds = Array.from({ length: nrMapIds }, (_, i) => ids.readUInt32LE(4 * i));
  }
  return {
    type: head.readUInt32LE(at.type),
    id: head.readUInt32LE(at.id),
    name: cString(head, at.name, BPF_OBJ_NAME_LEN),
    btfId: head.readUInt32LE(at.btf_id),
    mapIds,
  };
}

/** bpf_map_info of the map behind `fd`. */
export function mapInfo(fd: number): MapInfo {
  const at = bpf_map_info.offsets;
  const buf = getInfo('map', fd, bpf_map_info.size);
  return {
    type: buf.readUInt32LE(at.type),
    id: buf.readUInt32LE(at.id),
    keySize: buf.readUInt32LE(at.key_size),
    valueSize: buf.readUInt32LE(at.value_size),
    maxEntries: buf.readUInt32LE(at.max_entries),
    flags: buf.readUInt32LE(at.map_flags),
    name: cString(buf, at.name, BPF_OBJ_NAME_LEN),
  };
}

/** bpf_link_info of the link behind `fd`. */
export function linkInfo(fd: number): LinkInfo {
  const at = bpf_link_info.offsets;
  const buf = getInfo('link', fd, bpf_link_info.size);
  return { type: buf.readUInt32LE(at.type), id: buf.readUInt32LE(at.id), progId: buf.readUInt32LE(at.prog_id) };
}

/** Opens a pinned object (program, map or link) by path; returns a new fd. */
export function objGet(path: string): number {
  return callSys(`open pinned object ${path}`, () => native().bpf_obj_get(path));
}

/** Pins the object behind `fd` at `path` on a bpffs. */
export function objPin(fd: number, path: string): void {
  callSys(`pin fd ${fd} at ${path}`, () => native().bpf_obj_pin(fd, path));
}

/** A new fd for the program with this id (ENOENT once it is gone). */
export function progFdById(id: number): number {
  return callSys(`open program id ${id}`, () => native().bpf_prog_get_fd_by_id(id));
}

/** A new fd for the map with this id. */
export function mapFdById(id: number): number {
  return callSys(`open map id ${id}`, () => native().bpf_map_get_fd_by_id(id));
}

/** A new fd for the link with this id. */
export function linkFdById(id: number): number {
  return callSys(`open link id ${id}`, () => native().bpf_link_get_fd_by_id(id));
}

export const progInfoById = (id: number): ProgInfo => withFd(progFdById(id), progInfo);
export const mapInfoById = (id: number): MapInfo => withFd(mapFdById(id), mapInfo);
export const linkInfoById = (id: number): LinkInfo => withFd(linkFdById(id), linkInfo);

function ids(kind: string, next: (start: number, out: [number]) => number): number[] {
  const all: number[] = [];
  const out: [number] = [0];
  for (let start = 0; ; start = out[0]) {
    const ret = next(start, out);
    if (ret === -ENOENT) return all; // no more ids
    callSys(`list ${kind} ids`, () => ret);
    all.push(out[0]);
  }
}

/** Every program id loaded in the kernel, ascending. */
export function progIds(): number[] {
  return ids('program', (start, out) => native().bpf_prog_get_next_id(start, out));
}

/** Every map id in the kernel, ascending. */
export function mapIds(): number[] {
  return ids('map', (start, out) => native().bpf_map_get_next_id(start, out));
}

/** Every link id in the kernel, ascending. */
export function linkIds(): number[] {
  return ids('link', (start, out) => native().bpf_link_get_next_id(start, out));
}

/** Runs `fn` with `fd`, closing it afterwards whatever happens. */
export function withFd<T>(fd: number, fn: (fd: number) => T): T {
  try {
    return fn(fd);
  } finally {
    closeSync(fd);
  }
}
