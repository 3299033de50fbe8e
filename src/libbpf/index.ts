// Typed bindings to the system libbpf.so.1. The only module that knows koffi.
export { BpfObject, BpfProgram, BpfMap, type OpenOptions } from './object.js';
export { BpfLink, type PinnableLink } from './link.js';
export { LightObject, FdLink, type LightSpec, type LightVariant } from './light.js';
export { recordLoader, type RecordedLoader } from './genloader.js';
export { LibbpfError, LibraryMissingError, errnoName, errnoMessage } from './error.js';
export { LogLevel, configureLog, captureLog } from './log.js';
export { kernelHasFunction } from './btf.js';
export {
  progInfo,
  mapInfo,
  linkInfo,
  objGet,
  objPin,
  progFdById,
  mapFdById,
  mapLookup,
  mapUpdate,
  progIds,
  mapIds,
  withFd,
  BPF_LINK_TYPE_ITER,
  type ProgInfo,
  type MapInfo,
  type LinkInfo,
} from './info.js';
export { libbpfVersion } from './version.js';
export { Skeleton, type SkeletonSpec, type GlobalsSpec } from './skeleton.js';
export { decodeSection, sectionVars, type SectionLayout, type ValueType } from './globals.js';
export { objectGlobals, type ObjectGlobals, type GlobalSection, type EnumType } from './btf-globals.js';
export { readIterator } from './iter.js';
export { flock, SysError, LOCK_SH, LOCK_EX, LOCK_NB, LOCK_UN } from './flock.js';
