// bpf-preload/libbpf: typed bindings to the system libbpf.so.1, for Node.js
// tools that load and use BPF objects. The only module tree that knows koffi.
import './dispose.js';

export { BpfObject, BpfProgram, BpfMap, type OpenOptions } from './object.js';
export type { OpenObject, LoadedObject, OpenProgram, LoadedProgram, OpenMap, LoadedMap } from './lifecycle.js';
export { MapElements, FdMap, TypedMap, UpdateFlags, codecs, possibleCpus, mapLookup, mapUpdate, type Codec, type MapCreateOptions } from './maps.js';
export { Link, BpfLink, FdLink, IteratorReader, readIterator, type PinnableLink } from './link.js';
export { TcAttachment, type TcAttachPoint } from './tc.js';
export { RingBuffer } from './ringbuf.js';
export { PerfBuffer, type PerfBufferOptions } from './perfbuf.js';
export { openPerfEvent, PerfType, PerfSoftware, type PerfEventOptions } from './sys/perfevent.js';
export { RecordStream, type RecordHandler, type RawRecordHandler, type SliceOptions, type StreamOptions, type WaitOptions } from './stream.js';
export { LightObject, type LightSpec, type LightVariant } from './light.js';
export { ErrnoError, LibbpfError, SysError, ClosedError, KeyNotFoundError, KeyExistsError, LibraryMissingError, errnoName, errnoMessage } from './error.js';
export { LogLevel, configureLog } from './log.js';
export { kernelHasFunction } from './btf/kernel.js';
export {
  progInfo,
  mapInfo,
  linkInfo,
  progInfoById,
  mapInfoById,
  linkInfoById,
  objGet,
  objPin,
  progFdById,
  mapFdById,
  linkFdById,
  progIds,
  mapIds,
  linkIds,
  withFd,
  type ProgInfo,
  type MapInfo,
  type LinkInfo,
} from './info.js';
export { libbpfVersion } from './version.js';
export { enableRunTimeStats, progRunStatsById, mapMemlockById, progTypeName, mapTypeName, linkTypeName, pageSize, type ProgRunStats } from './stats.js';
export { Skeleton, type SkeletonSpec, type GlobalsSpec, type TypedMapSpec, type OpenSkeleton, type LoadedSkeleton } from './skeleton.js';
export { DecodedRecords, type RecordType, type RecordOf, type DecodedHandler } from './records.js';
export { bytesAt, cString, decodeSection, type SectionLayout, type ValueType } from './globals.js';
export {
  MalformedBtfError,
  objectTypes,
  type ObjectGlobals,
  type ObjectTypes,
  type MapTypes,
  type GlobalSection,
  type EnumType,
  type RecordStruct,
} from './btf/types.js';
export { ifindex } from './sys/netif.js';
export * from './sys/uapi.js';
