// An object's two states as two types, so that what is allowed only before
// load (autoload, maxEntries, initial values, attach targets) or only after
// (fds, elements, attaching, pins) is a compile-time error in the wrong one,
// as libbpf-rs's OpenObject/Object and bpf2go's specs and objects do. They
// are views of BpfObject's own handles (no runtime cost); BpfObject.open()
// gives an OpenObject, its load() a LoadedObject. BpfObject.openFile/openMem
// keep giving the unrestricted BpfObject.
import type { BpfMap, BpfObject, BpfProgram } from './object.js';

/** A program before load: no fd, nothing to attach or run yet. */
export type OpenProgram = Omit<
  BpfProgram,
  | 'fd'
  | 'attach'
  | 'attachIter'
  | 'attachRawTracepoint'
  | 'attachTracepoint'
  | 'attachKprobe'
  | 'attachUprobe'
  | 'attachUsdt'
  | 'attachPerfEvent'
  | 'attachCgroup'
  | 'attachXdp'
  | 'attachTc'
  | 'testRun'
  | 'pin'
  | 'unpin'
>;

/** A program after load: its autoload and attach target are settled. */
export type LoadedProgram = Omit<BpfProgram, 'autoload' | 'setAttachTarget'> & { readonly autoload: boolean };

/** A map before load: no fd, no elements; its size and initial value can still change. */
export type OpenMap = Omit<
  BpfMap,
  | 'fd'
  | 'lookup'
  | 'lookupPerCpu'
  | 'update'
  | 'updatePerCpu'
  | 'delete'
  | 'keys'
  | 'lookupBatch'
  | 'lookupBatchPerCpu'
  | 'lookupAndDelete'
  | 'updateBatch'
  | 'deleteBatch'
  | 'freeze'
  | 'typed'
  | 'pin'
  | 'unpin'
  | 'mapImage'
  | 'writeImage'
>;

/** A map after load: its size and initial value are the kernel's now. */
export type LoadedMap = Omit<BpfMap, 'maxEntries' | 'setInitialValue'> & { readonly maxEntries: number };

interface ObjectState<P, M> {
  readonly name: string;
  readonly programs: ReadonlyMap<string, P>;
  readonly maps: ReadonlyMap<string, M>;
  program(name: string): P;
  map(name: string): M;
  /** Closes every program and map fd; pinned or linked objects stay in the kernel. */
  close(): void;
  [Symbol.dispose](): void;
}

/** An object opened, not yet loaded: configure it, then load(). */
export interface OpenObject extends ObjectState<OpenProgram, OpenMap> {
  /** Creates the maps and loads the autoload programs; the same object, as loaded. */
  load(): LoadedObject;
}

/** A loaded object: attach its programs, use its maps. */
export type LoadedObject = ObjectState<LoadedProgram, LoadedMap>;

/** @internal The same object seen as loaded. */
export function asLoaded(obj: BpfObject): LoadedObject {
  return obj;
}
