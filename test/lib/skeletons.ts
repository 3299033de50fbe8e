// What a generated skeleton says of its object, compared by content: tests
// check a committed skeleton against a freshly built object with these, so
// they pass with another clang or libbpf than the one that made the file.
import { BpfObject, objectTypes } from '../../src/libbpf/index.js';

/** Programs, maps, every global's name and type, and the record structs, as libbpf and BTF give them. */
export function objectFacts(bytes: Uint8Array, name: string) {
  using obj = BpfObject.openMem(bytes, { name });
  const { sections, records } = objectTypes(obj);
  return {
    programs: [...obj.programs.keys()],
    maps: [...obj.maps.keys()],
    globals: sections.map(({ layout }) => [layout.section, layout.vars.map(([v, , type]) => [v, type])]),
    records: records.map(({ name: struct, type }) => [struct, type]),
  };
}

/** The object a generated skeleton embeds, and the sha256 it states for it. */
export function embeddedObject(skeletonText: string): { bytes: Buffer; sha256: string } {
  const base64 = /^const OBJECT_BASE64 = \[\n((?:\s+'[^']*',\n)*)\]\.join\(''\);$/m.exec(skeletonText);
  const sha256 = /^ {2}static readonly sha256 = '([0-9a-f]{64})';$/m.exec(skeletonText);
  if (!base64 || !sha256) throw new Error('not a generated skeleton: no OBJECT_BASE64 or sha256');
  const text = base64[1].replace(/[\s',]/g, '');
  return { bytes: Buffer.from(text, 'base64'), sha256: sha256[1] };
}
