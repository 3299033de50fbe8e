// The types an object's BTF gives its global variables and its maps' keys and
// values (objectTypes), for skeletons and gen skeleton: each section of
// globals libbpf made a map of, as a SectionLayout (globals.ts) of its
// variables (name, offset, type); each map whose key and value types are
// plain, as a MapTypes; the structs a program sends as records
// (ObjectTypes.records); and the named enums they use. Read with libbpf's
// own btf__* functions on the object's BTF after open, when libbpf has already
// filled in each section's size and each variable's offset.
import type { BpfObject } from '../object.js';
import { sizeOf, type SectionLayout, type ValueType } from '../globals.js';
import { native, type Pointer } from '../sys/native.js';
import { TYPE_SIZE, infoKind, infoVlen, recordWords } from './format.js';
import {
  BTF_INT_BOOL,
  BTF_INT_CHAR,
  BTF_INT_SIGNED,
  BTF_KIND_ARRAY,
  BTF_KIND_CONST,
  BTF_KIND_DATASEC,
  BTF_KIND_ENUM,
  BTF_KIND_ENUM64,
  BTF_KIND_FLOAT,
  BTF_KIND_FUNC,
  BTF_KIND_FUNC_PROTO,
  BTF_KIND_INT,
  BTF_KIND_PTR,
  BTF_KIND_RESTRICT,
  BTF_KIND_STRUCT,
  BTF_KIND_TYPEDEF,
  BTF_KIND_TYPE_TAG,
  BTF_KIND_UNION,
  BTF_KIND_VAR,
  BTF_KIND_VOLATILE,
  BTF_VAR_STATIC,
  BTF_FUNC_STATIC,
} from '../sys/uapi.js';

// An object's BTF is data from whoever built the object, and libbpf opens
// objects whose types loop (a CONST whose VOLATILE is that CONST again, an
// array of itself). So every walk is bounded: a chain of references at most
// as deep as libbpf's own (MAX_RESOLVE_DEPTH in libbpf's btf.c), and at most
// MAX_TYPES types expanded per object, which a struct of structs of structs
// could otherwise multiply without end.
const MAX_DEPTH = 32;
const MAX_TYPES = 1 << 16;

/** BTF this module cannot read: a cycle, a chain too deep, or types beyond the bound. */
export class MalformedBtfError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MalformedBtfError';
  }
}

export interface EnumType {
  readonly name: string;
  readonly size: number;
  readonly signed: boolean;
  readonly values: readonly (readonly [string, number | bigint])[];
}

/** One section of globals with the map libbpf made of it. */
export interface GlobalSection {
  /** The map's name as libbpf gives it ("bpf_prel.rodata", ".rodata.config"). */
  readonly mapName: string;
  readonly layout: SectionLayout;
}

export interface ObjectGlobals {
  readonly sections: readonly GlobalSection[];
  /** Named enums used by the variables, by name. */
  readonly enums: readonly EnumType[];
}

/** A map whose key and value are plain types: the skeleton gives it a typed view. */
export interface MapTypes {
  /** The map's name as libbpf gives it. */
  readonly mapName: string;
  readonly key: ValueType;
  readonly value: ValueType;
}

/** A struct the object's programs send (to a ring or perf buffer, say): the skeleton decodes it. */
export interface RecordStruct {
  /** Its C name: "exec_event" for struct exec_event. */
  readonly name: string;
  readonly type: Extract<ValueType, { kind: 'struct' }>;
}

/** The globals, and the maps with plain keys and values, in map order. */
export interface ObjectTypes extends ObjectGlobals {
  readonly maps: readonly MapTypes[];
  /**
   * The record structs, in BTF order: every named struct of plain data (see
   * objectTypes) that is the type of a global variable or a parameter of one
   * of the object's static functions, either itself or through one pointer.
   * Programs' entry points are left out because their parameter is the
   * kernel's context, extern functions (kfuncs) because they are the
   * kernel's, and so is what only CO-RE reaches (kernel structs mirrored with
   * preserve_access_index), which is neither.
   */
  readonly records: readonly RecordStruct[];
  /** Named enums used by the variables or by the maps' keys and values. */
  readonly enums: readonly EnumType[];
}

interface RawType {
  name: string;
  kind: number;
  vlen: number;
  kindFlag: boolean;
  /** size, or the referenced type id, as the kind says */
  sizeOrType: number;
  /** The kind's records after the 12-byte header, as 32-bit words. */
  words: Uint32Array;
}

class BtfReader {
  readonly #btf: Pointer;
  readonly enums = new Map<string, EnumType>();
  /** Types expanded so far (valueType calls), against MAX_TYPES. */
  #expanded = 0;

  constructor(btf: Pointer) {
    this.#btf = btf;
  }

  type(id: number): RawType {
    const n = native();
    const ptr = n.btf__type_by_id(this.#btf, id);
    if (ptr === null) throw new MalformedBtfError(`BTF type ${id} does not exist`);
    const [nameOff, info, sizeOrType] = n.btfWords(ptr, TYPE_SIZE / 4);
    const kind = infoKind(info);
    const vlen = infoVlen(info);
    const all = n.btfWords(ptr, TYPE_SIZE / 4 + recordWords(kind, vlen));
    return { name: this.name(nameOff), kind, vlen, kindFlag: info >>> 31 === 1, sizeOrType, words: all.slice(3) };
  }

  name(offset: number): string {
    return native().btf__name_by_offset(this.#btf, offset) ?? '';
  }

  size(id: number): number {
    const size = Number(native().btf__resolve_size(this.#btf, id));
    if (size < 0) throw new MalformedBtfError(`the size of BTF type ${id} cannot be resolved (a cycle, or a chain deeper than libbpf's ${MAX_DEPTH})`);
    return size;
  }

  /** Follows typedefs and qualifiers to the type that says what the bytes are. */
  resolve(id: number): [number, RawType] {
    const start = id;
    for (let depth = 0; depth <= MAX_DEPTH; depth++) {
      const t = this.type(id);
      if (![BTF_KIND_TYPEDEF, BTF_KIND_VOLATILE, BTF_KIND_CONST, BTF_KIND_RESTRICT, BTF_KIND_TYPE_TAG].includes(t.kind)) return [id, t];
      id = t.sizeOrType;
    }
    throw new MalformedBtfError(`BTF type ${start} goes through more than ${MAX_DEPTH} typedefs and qualifiers (a cycle?)`);
  }

  /** `depth`: how many arrays and structs enclose this type. */
  valueType(id: number, depth = 0): ValueType {
    if (depth > MAX_DEPTH) throw new MalformedBtfError(`BTF type ${id} is nested in more than ${MAX_DEPTH} arrays and structs (a type that contains itself?)`);
    if (++this.#expanded > MAX_TYPES) throw new MalformedBtfError(`the globals' and maps' types expand to more than ${MAX_TYPES} types`);
    const [rid, t] = this.resolve(id);
    const bytes = (): ValueType => ({ kind: 'bytes', size: this.size(rid) });
    switch (t.kind) {
      case BTF_KIND_INT: {
        const encoding = (t.words[0] >>> 24) & 0xf;
        const bits = t.words[0] & 0xff;
        const bitOffset = (t.words[0] >>> 16) & 0xff;
        if (bitOffset !== 0 || bits !== t.sizeOrType * 8 || ![1, 2, 4, 8].includes(t.sizeOrType)) return bytes();
        if (encoding & BTF_INT_BOOL) return t.sizeOrType === 1 ? { kind: 'bool' } : bytes();
        return { kind: 'int', size: t.sizeOrType as 1 | 2 | 4 | 8, signed: (encoding & BTF_INT_SIGNED) !== 0 };
      }
      case BTF_KIND_ENUM:
      case BTF_KIND_ENUM64:
        return this.enumType(t);
      case BTF_KIND_FLOAT:
        return t.sizeOrType === 4 || t.sizeOrType === 8 ? { kind: 'float', size: t.sizeOrType } : bytes();
      case BTF_KIND_ARRAY: {
        const [elemId, , length] = t.words;
        const [, elem] = this.resolve(elemId);
        if (this.isChar(elem)) return { kind: 'string', size: length };
        return { kind: 'array', length, stride: this.size(elemId), elem: this.valueType(elemId, depth + 1) };
      }
      case BTF_KIND_STRUCT: {
        const fields: [string, number, ValueType][] = [];
        for (let i = 0; i < t.vlen; i++) {
          const [nameOff, type, offset] = t.words.slice(3 * i, 3 * i + 3);
          // bitfields (kind_flag: size in the top byte) and members off a byte boundary
          const bitfield = t.kindFlag ? offset >>> 24 !== 0 : false;
          const bitOffset = t.kindFlag ? offset & 0xffffff : offset;
          if (bitfield || bitOffset % 8 !== 0) return bytes();
          fields.push([this.name(nameOff) || `__anon${i}`, bitOffset / 8, this.valueType(type, depth + 1)]);
        }
        return { kind: 'struct', size: t.sizeOrType, fields };
      }
      case BTF_KIND_PTR:
      case BTF_KIND_UNION:
      default:
        return bytes();
    }
  }

  isChar(t: RawType): boolean {
    if (t.kind !== BTF_KIND_INT || t.sizeOrType !== 1) return false;
    return t.name === 'char' || ((t.words[0] >>> 24) & 0xf & BTF_INT_CHAR) !== 0;
  }

  enumType(t: RawType): ValueType {
    const signed = t.kindFlag;
    const size = t.sizeOrType;
    if (![1, 2, 4, 8].includes(size)) return { kind: 'bytes', size };
    if (t.name && !this.enums.has(t.name)) {
      const values: [string, number | bigint][] = [];
      for (let i = 0; i < t.vlen; i++) {
        if (t.kind === BTF_KIND_ENUM) {
          const [nameOff, raw] = t.words.slice(2 * i, 2 * i + 2);
          values.push([this.name(nameOff), signed ? raw | 0 : raw >>> 0]);
        } else {
          const [nameOff, lo, hi] = t.words.slice(3 * i, 3 * i + 3);
          const v = (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
          values.push([this.name(nameOff), signed ? BigInt.asIntN(64, v) : v]);
        }
      }
      this.enums.set(t.name, { name: t.name, size, signed, values });
    }
    return { kind: 'int', size: size as 1 | 2 | 4 | 8, signed };
  }

  /** The named struct `id` is, directly or through one pointer (after typedefs and qualifiers); else null. */
  namedStruct(id: number): number | null {
    let [rid, t] = this.resolve(id);
    if (t.kind === BTF_KIND_PTR) [rid, t] = this.resolve(t.sizeOrType);
    return t.kind === BTF_KIND_STRUCT && t.name !== '' ? rid : null;
  }

  /** The records (see ObjectTypes.records) among all the object's types. */
  records(programs: ReadonlySet<string>): RecordStruct[] {
    const ids = new Set<number>();
    const count = native().btf__type_cnt(this.#btf);
    for (let id = 1; id < count; id++) {
      const t = this.type(id);
      if (t.kind === BTF_KIND_VAR) {
        const struct = this.namedStruct(t.sizeOrType);
        if (struct !== null) ids.add(struct);
      } else if (t.kind === BTF_KIND_FUNC && t.vlen === BTF_FUNC_STATIC && !programs.has(t.name)) {
        const proto = this.type(t.sizeOrType);
        if (proto.kind !== BTF_KIND_FUNC_PROTO) continue;
        for (let i = 0; i < proto.vlen; i++) {
          const struct = this.namedStruct(proto.words[2 * i + 1]);
          if (struct !== null) ids.add(struct);
        }
      }
    }
    const records: RecordStruct[] = [];
    for (const id of [...ids].sort((a, b) => a - b)) {
      const type = this.valueType(id);
      if (type.kind === 'struct' && plain(type)) records.push({ name: this.type(id).name, type });
    }
    return records;
  }

  section(datasecId: number): SectionLayout | null {
    const sec = this.type(datasecId);
    if (sec.kind !== BTF_KIND_DATASEC) return null;
    const vars: [string, number, ValueType][] = [];
    for (let i = 0; i < sec.vlen; i++) {
      const [varId, offset] = sec.words.slice(3 * i, 3 * i + 2);
      const v = this.type(varId);
      // static variables (format strings, say) are the object's own business
      if (v.kind !== BTF_KIND_VAR || v.words[0] === BTF_VAR_STATIC) continue;
      vars.push([v.name, offset, this.valueType(v.sizeOrType)]);
    }
    return { section: sec.name, size: sec.sizeOrType, vars };
  }
}

/** Whether values of this type are plain data all the way down: nothing kept as bytes. */
function plain(type: ValueType): boolean {
  switch (type.kind) {
    case 'bytes':
      return false;
    case 'array':
      return plain(type.elem);
    case 'struct':
      return type.fields.every(([, , t]) => plain(t));
    default:
      return true;
  }
}

/**
 * The globals, and the maps whose key and value types are plain (integers,
 * bool, enums, floats, char arrays, fixed arrays and structs of them): what a
 * skeleton types. Maps with pointers, unions or bitfields in either are left
 * out, and stay bytes. Before load.
 */
export function objectTypes(obj: BpfObject): ObjectTypes {
  const btf = native().bpf_object__btf(obj.assertOpen());
  if (btf === null) return { sections: [], maps: [], enums: [], records: [] };
  const reader = new BtfReader(btf);
  const sections: GlobalSection[] = [];
  const maps: MapTypes[] = [];
  for (const map of obj.maps.values()) {
    if (!map.isInternal) {
      // ring buffers, maps of maps and maps declared without __type have no key or value type
      if (map.btfKeyTypeId === 0 || map.btfValueTypeId === 0) continue;
      const key = reader.valueType(map.btfKeyTypeId);
      const value = reader.valueType(map.btfValueTypeId);
      if (plain(key) && plain(value) && sizeOf(key) === map.keySize && sizeOf(value) === map.valueSize) {
        maps.push({ mapName: map.name, key, value });
      }
      continue;
    }
    if (map.btfValueTypeId === 0) continue;
    const layout = reader.section(map.btfValueTypeId);
    // .kconfig and .ksyms hold externs the loader fills in; nothing to set or read
    if (!layout || !/^\.(rodata|data|bss)(\.|$)/.test(layout.section) || layout.vars.length === 0) continue;
    sections.push({ mapName: map.name, layout });
  }
  const records = reader.records(new Set(obj.programs.keys()));
  const enums = [...reader.enums.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return { sections, maps, enums, records };
}
