// The skeleton generator (`bpf-preload gen skeleton`; build/build-bpf.ts
// makes skel/ with it): from a compiled BPF object to a typed TypeScript
// module that embeds the object. It asks libbpf itself
// what the object holds (as bpftool gen skeleton does), so anything libbpf
// can open gets a skeleton, and anything it cannot is refused with its reason.
// Output is a pure function of the object bytes and its name (and, for light
// loaders, the libbpf that records them). Globals are typed from the object's
// BTF (renderGlobals), and so are maps whose keys and values are plain
// (renderTypedMaps): `skel.typed.NAME`, and the structs the programs send
// (renderRecords): an interface and a decoder each, for skel.ringbuf().
// open() gives the skeleton typed as NAMEOpen, load() as NAMELoaded
// (renderLifecycle).
import { createHash } from 'node:crypto';
import {
  BPF_MAP_TYPE_PERF_EVENT_ARRAY,
  BPF_MAP_TYPE_RINGBUF,
  BpfObject,
  LibbpfError,
  MalformedBtfError,
  libbpfVersion,
  objectTypes,
  type EnumType,
  type MapTypes,
  type ObjectGlobals,
  type RecordStruct,
  type ValueType,
} from '../libbpf/index.js';
import { recordLoader } from '../libbpf/genloader.js';

/**
 * Light-skeleton loaders to record for an object: the object name to record
 * them with (internal map names such as NAME.rodata derive from it) and, per
 * variant, the programs its loader loads.
 */
export interface LightOptions {
  objectName: string;
  variants: Readonly<Record<string, readonly string[]>>;
}

export interface SkeletonInput {
  /** The object file's bytes. */
  bytes: Uint8Array;
  /** Skeleton name, e.g. "iterators" for iterators.bpf.o. */
  name: string;
  /** Import specifier of src/libbpf/index.js as seen from the generated file. */
  libbpfImport: string;
  /** Also embed light-skeleton loaders (libbpf's gen_loader) for these variants. */
  light?: LightOptions;
  /**
   * Only the globals' types and layouts: a module without the object, for
   * code that decodes a section read from the kernel (a pinned program's
   * .rodata, say) and must not pull in the loader.
   */
  globalsOnly?: boolean;
  /**
   * Import specifier of the object's globals-only module (made with
   * globalsOnly) as seen from the generated file: the skeleton imports the
   * globals' types and layouts from it, and re-exports them, instead of
   * repeating them.
   */
  globalsModule?: string;
  /** The command that regenerates the file, for its header. */
  regenerate?: string;
}

/** "iterators.bpf.o" -> "iterators". */
export function skeletonName(objectFile: string): string {
  const base = objectFile.split('/').pop() ?? objectFile;
  return base.replace(/\.o$/, '').replace(/\.bpf$/, '');
}

export function pascalCase(name: string): string {
  return name
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
    .map((w) => w[0].toUpperCase() + w.slice(1))
    .join('');
}

// Internal maps are named "<object prefix>.<section>"; the skeleton keys them
// by section ("rodata") so the key does not depend on the name opened with.
function mapKey(mapName: string): string {
  const dot = mapName.indexOf('.');
  return dot < 0 ? mapName : mapName.slice(dot + 1);
}

function base64Lines(bytes: Uint8Array, indent: string): string {
  const b64 = Buffer.from(bytes).toString('base64');
  const chunks: string[] = [];
  for (let i = 0; i < b64.length; i += 100) chunks.push(`${indent}'${b64.slice(i, i + 100)}',`);
  return chunks.join('\n');
}

/**
 * Any string as a single-quoted JavaScript literal of printable ASCII: every
 * name from the object's BTF and ELF (sections, maps, programs, variables,
 * fields, enums) passes through here, so a name can hold quotes, newlines or
 * `*\/` and still be only a string in the generated code.
 */
function quote(s: string): string {
  let out = "'";
  for (const ch of s) {
    const c = ch.codePointAt(0) ?? 0;
    if (ch === "'" || ch === '\\') out += `\\${ch}`;
    else if (c >= 0x20 && c < 0x7f) out += ch;
    else out += c > 0xffff ? `\\u{${c.toString(16)}}` : `\\u${c.toString(16).padStart(4, '0')}`;
  }
  return `${out}'`;
}

const union = (names: readonly string[]) => (names.length ? names.map(quote).join(' | ') : 'never');
const list = (names: readonly string[]) => `[${names.map(quote).join(', ')}]`;

interface ObjectFacts {
  programs: string[];
  maps: string[];
  globals: ObjectGlobals;
  typedMaps: readonly MapTypes[];
  records: readonly RecordStruct[];
  /** Skeleton keys of the ring buffer maps, and of the perf event arrays: what ringbuf() and perfbuf() take. */
  ringMaps: string[];
  perfMaps: string[];
}

/** What the generator needs to know of an object, asked of libbpf; a clear error if it cannot open it. */
function inspectObject(bytes: Uint8Array, name: string): ObjectFacts {
  let obj: BpfObject;
  try {
    obj = BpfObject.openMem(bytes, { name });
  } catch (err) {
    if (err instanceof LibbpfError) {
      const why = err.log.length ? `: ${err.log[err.log.length - 1].replace(/^libbpf: /, '')}` : '';
      throw new Error(`${name}: not a BPF object libbpf can open (${err.code})${why}: rebuild it from its source (clang -target bpf -g)`, { cause: err });
    }
    throw err;
  }
  try {
    const { sections, enums, maps, records } = objectTypes(obj);
    const ofType = (type: number) => [...obj.maps.values()].filter((m) => m.type === type).map((m) => mapKey(m.name));
    return {
      programs: [...obj.programs.keys()],
      maps: [...obj.maps.keys()].map(mapKey),
      globals: { sections, enums },
      typedMaps: maps,
      records,
      ringMaps: ofType(BPF_MAP_TYPE_RINGBUF),
      perfMaps: ofType(BPF_MAP_TYPE_PERF_EVENT_ARRAY),
    };
  } catch (err) {
    if (err instanceof MalformedBtfError) throw new Error(`${name}: malformed BTF: ${err.message}: rebuild the object from its source`, { cause: err });
    throw err;
  } finally {
    obj.close();
  }
}

/** The object's programs, in its order. */
export function objectPrograms(bytes: Uint8Array, name: string): string[] {
  return inspectObject(bytes, name).programs;
}

/** ".rodata" -> "rodata", ".data.config" -> "data_config": the skeleton's property for a section. */
function sectionProperty(section: string): string {
  return section.slice(1).replace(/[^A-Za-z0-9_]/g, '_');
}

const identifier = /^[A-Za-z_$][A-Za-z0-9_$]*$/;
// A property key: bare where it can be, else quoted. An object literal's
// '__proto__' (bare or quoted) sets the prototype; computed, it is a key.
const key = (k: string) => (k === '__proto__' ? `[${quote(k)}]` : identifier.test(k) ? k : quote(k));
/** A name in a /** *\/ comment: as it is when plainly a name, else quoted, unable to end the comment. */
const commentName = (s: string) => (/^[A-Za-z0-9_.]+$/.test(s) ? s : quote(s).replaceAll('*/', '*\\/'));

// The TypeScript names a skeleton declares, each made from a name in the
// object: one function per kind, used both to render and to check them.
const enumConstName = (e: EnumType) => pascalCase(e.name);
const sectionTypeName = (pascal: string, section: string) => `${pascal}${pascalCase(sectionProperty(section))}`;
const mapTypePrefix = (pascal: string, mapName: string) => `${pascal}${pascalCase(mapKey(mapName))}`;
const recordTypeName = (pascal: string, struct: string) => `${pascal}${pascalCase(struct)}`;

/**
 * Names the generated module uses that no declaration of ours may take: its
 * imports, its own constants, and the globals its code calls.
 */
const TAKEN = [
  ...[
    'Skeleton',
    'OpenOptions',
    'SkeletonSpec',
    'OpenSkeleton',
    'LoadedSkeleton',
    'LightSpec',
    'SectionLayout',
    'TypedMap',
    'RecordType',
    'cString',
    'bytesAt',
  ],
  ...['spec', 'OBJECT_BASE64', 'light'],
  ...['Buffer', 'DataView', 'Array', 'Readonly', 'ReadonlyArray', 'Record', 'Uint8Array'],
];

/**
 * Refuses an object whose names would make a declaration that is not an
 * identifier, or the same one twice: C allows names (a section's, above all)
 * that a TypeScript declaration cannot carry, and two names can give the
 * same PascalCase. Section properties (skel.rodata, skel.data_NAME) start
 * with rodata, data or bss, so they cannot take the class's own members,
 * only each other's place.
 */
function checkDeclarations(name: string, { globals, typedMaps, records }: ObjectFacts): void {
  const pascal = pascalCase(name);
  const declared = new Map<string, string>(TAKEN.map((n) => [n, 'the generated code']));
  const declare = (ident: string, from: string) => {
    const clash = declared.get(ident);
    if (!identifier.test(ident) || clash !== undefined) {
      const why = clash === undefined ? 'is not an identifier' : `is already taken by ${clash}`;
      throw new Error(`${name}: ${from} gives the TypeScript name ${quote(ident)}, which ${why}: rename it in the BPF source`);
    }
    declared.set(ident, from);
  };
  for (const suffix of ['Program', 'Map', 'Layouts', 'TypedMaps', 'Records', 'Open', 'Loaded', 'Skeleton', 'LightVariant'])
    declare(`${pascal}${suffix}`, `skeleton name ${quote(name)}`);
  for (const e of globals.enums) declare(enumConstName(e), `enum ${quote(e.name)}`);
  const properties = new Map<string, string>();
  for (const { layout } of globals.sections) {
    const from = `section ${quote(layout.section)}`;
    declare(sectionTypeName(pascal, layout.section), from);
    const property = sectionProperty(layout.section);
    const clash = properties.get(property);
    if (!identifier.test(property) || clash !== undefined) {
      throw new Error(
        `${name}: ${from} gives the skeleton property ${quote(property)}, which ${clash === undefined ? 'is not an identifier' : `${clash} also gives`}: rename it in the BPF source`,
      );
    }
    properties.set(property, from);
  }
  for (const { mapName } of typedMaps) {
    for (const suffix of ['Key', 'Value']) declare(`${mapTypePrefix(pascal, mapName)}${suffix}`, `map ${quote(mapName)}`);
  }
  for (const r of records) declare(recordTypeName(pascal, r.name), `struct ${quote(r.name)}`);
}

/** The TypeScript type of a value of this layout type. */
function tsType(type: ValueType, indent: string): string {
  switch (type.kind) {
    case 'int':
      return type.size === 8 ? 'bigint' : 'number';
    case 'bool':
      return 'boolean';
    case 'float':
      return 'number';
    case 'string':
      return 'string';
    case 'bytes':
      return 'Uint8Array';
    case 'array':
      return `ReadonlyArray<${tsType(type.elem, indent)}>`;
    case 'struct': {
      const inner = `${indent}  `;
      const fields = type.fields.map(([name, , t]) => `${inner}readonly ${key(name)}: ${tsType(t, inner)};`);
      return `{\n${fields.join('\n')}\n${indent}}`;
    }
  }
}

/** A layout type as a TypeScript literal (one line). */
function typeLiteral(type: ValueType): string {
  switch (type.kind) {
    case 'int':
      return `{ kind: 'int', size: ${type.size}, signed: ${type.signed} }`;
    case 'bool':
      return `{ kind: 'bool' }`;
    case 'float':
    case 'string':
    case 'bytes':
      return `{ kind: '${type.kind}', size: ${type.size} }`;
    case 'array':
      return `{ kind: 'array', length: ${type.length}, stride: ${type.stride}, elem: ${typeLiteral(type.elem)} }`;
    case 'struct':
      return `{ kind: 'struct', size: ${type.size}, fields: [${type.fields.map(([n, o, t]) => `[${quote(n)}, ${o}, ${typeLiteral(t)}]`).join(', ')}] }`;
  }
}

function enumConst(e: EnumType): string {
  const value = (v: number | bigint) => (typeof v === 'bigint' ? `${v}n` : String(v));
  const body = e.values.map(([n, v]) => `  ${key(n)}: ${value(v)},`).join('\n');
  return `/** enum ${commentName(e.name)}: the values its variables hold. */\nexport const ${enumConstName(e)} = {\n${body}\n} as const;\n`;
}

/**
 * The globals' part of a module: enum constants, one interface per section,
 * and the sections' layouts as data (globals.ts decodes with them).
 */
function renderGlobals(name: string, globals: ObjectGlobals): string {
  const pascal = pascalCase(name);
  if (globals.sections.length === 0) return '';
  const interfaces = globals.sections.map(({ layout }) => {
    const rodata = layout.section.startsWith('.rodata');
    const doc = rodata ? 'set between open() and load(); read-only after' : 'read and written at any time; after load, the kernel map itself';
    const fields = layout.vars.map(([v, , t]) => `  ${key(v)}: ${tsType(t, '  ')};`);
    return `/** ${commentName(layout.section)}: ${doc}. */\nexport interface ${sectionTypeName(pascal, layout.section)} {\n${fields.join('\n')}\n}\n`;
  });
  const layouts = globals.sections.map(({ layout }) => {
    const vars = layout.vars.map(([v, o, t]) => `      [${quote(v)}, ${o}, ${typeLiteral(t)}],`).join('\n');
    return `  ${key(sectionProperty(layout.section))}: {\n    section: ${quote(layout.section)},\n    size: ${layout.size},\n    vars: [\n${vars}\n    ],\n  },`;
  });
  const props = union(globals.sections.map(({ layout }) => sectionProperty(layout.section)));
  return `
${[...globals.enums.map(enumConst), ...interfaces].join('\n')}
/** Where each variable lies in its section, and its type. */
export const ${pascal}Layouts: Readonly<Record<${props}, SectionLayout>> = {
${layouts.join('\n')}
};
`;
}

/**
 * The typed maps' part of a module: each map's key and value types, and the
 * interface of the skeleton's `typed` property. Their layouts go in the spec.
 */
function renderTypedMaps(name: string, maps: readonly MapTypes[]): string {
  if (maps.length === 0) return '';
  const prefix = (mapName: string) => mapTypePrefix(pascalCase(name), mapName);
  const types = maps.map(
    ({ mapName, key, value }) =>
      `/** Map ${commentName(mapName)}: its key and value, from its BTF. */\nexport type ${prefix(mapName)}Key = ${tsType(key, '')};\nexport type ${prefix(mapName)}Value = ${tsType(value, '')};\n`,
  );
  const props = maps.map(({ mapName }) => `  readonly ${key(mapKey(mapName))}: TypedMap<${prefix(mapName)}Key, ${prefix(mapName)}Value>;`);
  return `
${types.join('\n')}
/** The maps whose keys and values are plain, as JS values (skel.typed; skel.maps has their bytes). */
export interface ${pascalCase(name)}TypedMaps {
${props.join('\n')}
}
`;
}

/**
 * The records' part of a module: an interface per record struct and
 * NAMERecords, their decoders by C name. Each decoder is written for its
 * struct's layout alone: DataView reads at fixed offsets, nothing walked per
 * record. Returns the helpers its code calls, for the import.
 */
function renderRecords(name: string, records: readonly RecordStruct[]): { text: string; helpers: Set<string> } {
  const helpers = new Set<string>();
  if (records.length === 0) return { text: '', helpers };
  const pascal = pascalCase(name);
  const at = (base: string, k: number) => (k === 0 ? base : `${base} + ${k}`);
  /**
   * The decoding expression of a value of `type` at offset `base` + `k`.
   * An array is a loop that fills a local array first (Array.from over an
   * array-like is some twenty times slower): its statements go to `out`, at
   * `indent`, and the expression is the local's name. An object literal's
   * fields are indented from `inner`, the line the expression is on.
   */
  const expr = (type: ValueType, base: string, k: number, out: string[], indent: string, inner: string, locals: { n: number }): string => {
    const off = at(base, k);
    switch (type.kind) {
      case 'int': {
        const bits = type.size * 8;
        const method = type.size === 8 ? `get${type.signed ? 'BigInt' : 'BigUint'}64` : `get${type.signed ? 'Int' : 'Uint'}${bits}`;
        return type.size === 1 ? `v.${method}(${off})` : `v.${method}(${off}, true)`;
      }
      case 'bool':
        return `v.getUint8(${off}) !== 0`;
      case 'float':
        return `v.getFloat${type.size * 8}(${off}, true)`;
      case 'string':
        helpers.add('cString');
        return `cString(b, ${off}, ${type.size})`;
      case 'bytes':
        helpers.add('bytesAt');
        return `bytesAt(b, ${off}, ${type.size})`;
      case 'array': {
        const n = locals.n++;
        const [a, i] = [`a${n}`, `i${n}`];
        const body: string[] = [];
        const elem = expr(type.elem, `${off} + ${type.stride === 1 ? i : `${i} * ${type.stride}`}`, 0, body, `${indent}  `, `${indent}  `, locals);
        out.push(
          `${indent}const ${a} = new Array<${tsType(type.elem, indent)}>(${type.length});`,
          `${indent}for (let ${i} = 0; ${i} < ${type.length}; ${i}++) {`,
          ...body,
          `${indent}  ${a}[${i}] = ${elem};`,
          `${indent}}`,
        );
        return a;
      }
      case 'struct': {
        const line = `${inner}  `;
        const fields = type.fields.map(([field, fieldOff, t]) => `${line}${key(field)}: ${expr(t, base, k + fieldOff, out, indent, line, locals)},`);
        return `{\n${fields.join('\n')}\n${inner}}`;
      }
    }
  };
  const interfaces = records.map(
    (r) =>
      `/** struct ${commentName(r.name)}: a record the programs send (skel.ringbuf(map, ${quote(r.name)})). */\nexport interface ${recordTypeName(pascal, r.name)} ${tsType(r.type, '')}\n`,
  );
  const decoders = records.map((r) => {
    const statements: string[] = [];
    const value = expr(r.type, 'o', 0, statements, '      ', '      ', { n: 0 });
    const body = [...statements, `      return ${value};`].join('\n');
    // A parameter the body does not read is marked so (noUnusedParameters).
    const param = (name: string, type: string) => `${body.includes(`${name}.`) || body.includes(`(${name},`) ? name : `_${name}`}: ${type}`;
    const offsets = r.type.fields.map(([field, fieldOff]) => `${key(field)}: ${fieldOff}`).join(', ');
    return `  ${key(r.name)}: {
    name: ${quote(r.name)},
    size: ${r.type.size},
    offsets: { ${offsets} },
    decode: (${param('b', 'Buffer')}, ${param('v', 'DataView')}, o: number): ${recordTypeName(pascal, r.name)} => {
${body}
    },
  },`;
  });
  const text = `
${interfaces.join('\n')}
/** The record structs' decoders, by C name: reads at the offsets the compiler chose. */
export const ${pascal}Records = {
${decoders.join('\n')}
} satisfies Readonly<Record<string, RecordType<unknown>>>;
`;
  return { text, helpers };
}

/**
 * The skeleton's two states as types: what open() gives (.rodata to set) and
 * what load() gives (.rodata read-only, .data, .bss, typed maps, records).
 */
function renderLifecycle(name: string, { globals, typedMaps, records, ringMaps, perfMaps }: ObjectFacts): string {
  const pascal = pascalCase(name);
  const sections = globals.sections.map(({ layout }) => ({
    property: sectionProperty(layout.section),
    type: sectionTypeName(pascal, layout.section),
    rodata: layout.section.startsWith('.rodata'),
  }));
  const members = (list: string[]) => (list.length ? `{ ${list.join('; ')} }` : 'unknown');
  const before = members(sections.filter((s) => s.rodata).map((s) => `readonly ${s.property}: ${s.type}`));
  const after = members([
    ...sections.map((s) => `readonly ${s.property}: ${s.rodata ? `Readonly<${s.type}>` : s.type}`),
    ...(typedMaps.length ? [`readonly typed: ${pascal}TypedMaps`] : []),
  ]);
  const recordTypes = records.length ? `typeof ${pascal}Records` : 'Record<never, never>';
  return `
/** The skeleton between open() and load(): .rodata, programs' autoload and maps' sizes can be set. */
export type ${pascal}Open = OpenSkeleton<${pascal}Program, ${pascal}Map, ${before}, ${pascal}Loaded>;
/** The skeleton once loaded: fds, elements, .data and .bss, attach, records. */
export type ${pascal}Loaded = LoadedSkeleton<${pascal}Program, ${pascal}Map, ${after}, ${recordTypes}, ${union(ringMaps)}, ${union(perfMaps)}>;
`;
}

/** The spec the runtime Skeleton works from: names, globals' layouts, typed maps, records. */
function renderSpec(name: string, { programs, maps, globals, typedMaps, records }: ObjectFacts): string {
  const pascal = pascalCase(name);
  const globalsSpec = globals.sections.length
    ? `  globals: [\n${globals.sections
        .map(({ mapName, layout }) => {
          const property = sectionProperty(layout.section);
          return `    { property: ${quote(property)}, map: ${quote(mapKey(mapName))}, layout: ${pascal}Layouts.${property} },`;
        })
        .join('\n')}\n  ],\n`
    : '';
  const typedSpec = typedMaps.length
    ? `  typedMaps: [\n${typedMaps.map((m) => `    { map: ${quote(mapKey(m.mapName))}, key: ${typeLiteral(m.key)}, value: ${typeLiteral(m.value)} },`).join('\n')}\n  ],\n`
    : '';
  const recordsSpec = records.length ? `  records: ${pascal}Records,\n` : '';
  return `
const spec: SkeletonSpec = {
  name: ${quote(name)},
  programs: ${list(programs)},
  maps: ${list(maps)},
${globalsSpec}${typedSpec}${recordsSpec}};
`;
}

/** The object itself, as base64 lines. */
function renderObjectBytes(name: string, bytes: Uint8Array): string {
  return `
// ${name}.bpf.o, ${bytes.length} bytes, base64.
const OBJECT_BASE64 = [
${base64Lines(bytes, '  ')}
].join('');
`;
}

/** The generated class: its section and typed-map properties, the embedded bytes, open(). */
function renderClass(name: string, bytes: Uint8Array, { globals, typedMaps }: ObjectFacts, light: boolean): string {
  const pascal = pascalCase(name);
  const cls = `${pascal}Skeleton`;
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const sections = globals.sections.map(({ layout }) => ({ property: sectionProperty(layout.section), type: sectionTypeName(pascal, layout.section) }));
  const typedType = `${pascal}TypedMaps`;
  const hasTyped = typedMaps.length > 0;
  const fields =
    sections.map((s) => `  readonly ${s.property}: ${s.type};\n`).join('') +
    (hasTyped ? `  /** Maps with plain keys and values, typed: get, set, delete, keys (getPerCpu, setPerCpu). */\n  readonly typed: ${typedType};\n` : '');
  const assigns =
    sections.map((s) => `    this.${s.property} = this.globals<${s.type}>(${quote(s.property)});\n`).join('') +
    (hasTyped ? `    this.typed = this.typedMaps<${typedType}>();\n` : '');
  return `
export class ${cls} extends Skeleton<${pascal}Program, ${pascal}Map> {
  /** sha256 of the embedded object file. */
  static readonly sha256 = ${quote(sha256)};

${light ? '  /** Light-skeleton loaders, for kernels that can run them. */\n  static readonly light = light;\n\n' : ''}${fields}${fields ? '\n' : ''}  private constructor(options?: OpenOptions) {
    super(spec, ${cls}.bytes(), options);
${assigns}  }

  /** The embedded object file. */
  static bytes(): Buffer {
    return Buffer.from(OBJECT_BASE64, 'base64');
  }

  /** Parses the embedded object (nothing reaches the kernel until load()), typed as open: see ${pascal}Open. */
  static open(options?: OpenOptions): ${pascal}Open {
    return new ${cls}(options) as unknown as ${pascal}Open;
  }
}
`;
}

const header = (name: string, regenerate?: string) =>
  `// Code generated by bpf-preload gen skeleton from ${name}.bpf.o. DO NOT EDIT.\n${regenerate ? `// Regenerate with \`${regenerate}\`.\n` : ''}`;

/**
 * The module's globals: rendered here, or, with `globalsModule`, imported
 * from the module generated with globalsOnly (and re-exported).
 */
function globalsPart(name: string, globals: ObjectGlobals, globalsModule: string | undefined): { imports: string; text: string } {
  if (globals.sections.length === 0) return { imports: '', text: '' };
  if (globalsModule === undefined) return { imports: '', text: renderGlobals(name, globals) };
  const pascal = pascalCase(name);
  const types = globals.sections.map(({ layout }) => `type ${sectionTypeName(pascal, layout.section)}`);
  return {
    imports: `import { ${pascal}Layouts, ${types.join(', ')} } from ${quote(globalsModule)};\nexport * from ${quote(globalsModule)};\n`,
    text: '',
  };
}

/** Opens the object with libbpf and renders its skeleton module. */
export function generateSkeleton({ bytes, name, libbpfImport, light, globalsOnly, globalsModule, regenerate }: SkeletonInput): string {
  if (!/^[A-Za-z_][A-Za-z0-9_-]*$/.test(name)) throw new Error(`skeleton name ${quote(name)} is not a valid identifier`);
  if (regenerate !== undefined && /[\r\n\u2028\u2029]/.test(regenerate)) throw new Error('the regenerate command must be one line');
  const facts = inspectObject(bytes, name);
  checkDeclarations(name, facts);
  const { programs, maps, globals, typedMaps } = facts;
  if (programs.length === 0) throw new Error(`${name}: the object has no BPF programs`);
  const pascal = pascalCase(name);
  const hasGlobals = globals.sections.length > 0;

  if (globalsOnly) {
    if (!hasGlobals) throw new Error(`${name}: the object has no global variables`);
    return `${header(name, regenerate)}// The globals' types and layouts alone: no object, nothing to load.
import type { SectionLayout } from ${quote(libbpfImport)};
${renderGlobals(name, globals)}`;
  }

  const globalsBlock = globalsPart(name, globals, globalsModule);
  const records = renderRecords(name, facts.records);
  const imports = [
    'Skeleton',
    ...[...records.helpers].sort(),
    'type OpenOptions',
    'type SkeletonSpec',
    'type OpenSkeleton',
    'type LoadedSkeleton',
    ...(light ? ['type LightSpec'] : []),
    ...(hasGlobals && globalsModule === undefined ? ['type SectionLayout'] : []),
    ...(typedMaps.length ? ['type TypedMap'] : []),
    ...(facts.records.length ? ['type RecordType'] : []),
  ];
  return `${header(name, regenerate)}import { ${imports.join(', ')} } from ${quote(libbpfImport)};
${globalsBlock.imports}
export type ${pascal}Program = ${union(programs)};
export type ${pascal}Map = ${union(maps)};
${globalsBlock.text}${renderTypedMaps(name, typedMaps)}${records.text}${renderLifecycle(name, facts)}${renderSpec(name, facts)}${renderObjectBytes(name, bytes)}${light ? lightSection(bytes, name, programs, maps.length, light) : ''}${renderClass(name, bytes, facts, light !== undefined)}`;
}

/**
 * Records each variant's loader (libbpf opens the object and records instead
 * of loading: no kernel BTF is read and nothing is created in the kernel) and
 * renders them as a LightSpec. The loaders depend on the libbpf that recorded
 * them, so its version is part of the output.
 */
function lightSection(bytes: Uint8Array, name: string, programs: string[], maps: number, light: LightOptions): string {
  const variants = Object.entries(light.variants);
  if (variants.length === 0) throw new Error(`${name}: light skeleton without variants`);
  const type = `${pascalCase(name)}LightVariant`;
  const rendered = variants.map(([variant, named]) => {
    // in the object's order: the loader reports program fds in that order
    const progs = programs.filter((p) => named.includes(p));
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(variant)) throw new Error(`${name}: light variant ${quote(variant)} is not an identifier`);
    const unknown = named.filter((p) => !programs.includes(p));
    if (unknown.length || progs.length === 0) {
      throw new Error(`${name}: light variant ${variant} names ${unknown.length ? `unknown programs ${list(unknown)}` : 'no programs'}`);
    }
    let loader;
    try {
      loader = recordLoader(bytes, light.objectName, progs);
    } catch (err) {
      if (err instanceof LibbpfError) throw new Error(`${name}: cannot record light loader ${variant}: ${err.message}`, { cause: err });
      throw err;
    }
    return `    ${variant}: {
      programs: ${list(progs)},
      // ${loader.insns.length} bytes of loader instructions
      insns: [
${base64Lines(loader.insns, '        ')}
      ].join(''),
      // ${loader.data.length} bytes of loader data
      data: [
${base64Lines(loader.data, '        ')}
      ].join(''),
    },`;
  });
  return `
export type ${type} = ${union(variants.map(([v]) => v))};

// Light-skeleton loaders recorded by libbpf ${libbpfVersion()}'s gen_loader, with object name ${quote(light.objectName)}.
const light: LightSpec<${pascalCase(name)}Program, ${type}> = {
  objectName: ${quote(light.objectName)},
  mapCount: ${maps},
  programs: ${list(programs)},
  variants: {
${rendered.join('\n')}
  },
};
`;
}
