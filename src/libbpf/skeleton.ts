// What every generated skeleton (skel/*.skel.ts) shares: open an embedded
// object, expose its programs, maps and global variables under typed names,
// attach, stream decoded records, destroy. Generated files only add the
// bytes, the names, the layouts of the globals, the key and value types of
// typed maps and the records' decoders, as bpftool's do. A skeleton's open()
// gives it as an OpenSkeleton and its load() as a LoadedSkeleton: one
// object, two types, so that what only one state allows is a compile-time
// error in the other (as lifecycle.ts does for BpfObject).
import { BpfObject, type BpfMap, type BpfProgram, type OpenOptions } from './object.js';
import type { BpfLink } from './link.js';
import { sectionVars, typeCodec, type SectionLayout, type ValueType } from './globals.js';
import type { TypedMap } from './maps.js';
import type { LoadedMap, LoadedObject, LoadedProgram, OpenMap, OpenObject, OpenProgram } from './lifecycle.js';
import { DecodedRecords, type RecordOf, type RecordType } from './records.js';
import { RingBuffer } from './ringbuf.js';
import { PerfBuffer, type PerfBufferOptions } from './perfbuf.js';

/** A section of globals as the skeleton shows it. */
export interface GlobalsSpec {
  /** The skeleton's property for it: "rodata", "bss", "data_config". */
  readonly property: string;
  /** The skeleton key of its map (see SkeletonSpec.maps). */
  readonly map: string;
  readonly layout: SectionLayout;
}

/** A map whose key and value types are plain: the skeleton's `typed` view of it. */
export interface TypedMapSpec {
  /** The skeleton key of the map (see SkeletonSpec.maps). */
  readonly map: string;
  readonly key: ValueType;
  readonly value: ValueType;
}

export interface SkeletonSpec {
  /** Object name used when none is given to open(). */
  readonly name: string;
  /** Program names, in the object's order. */
  readonly programs: readonly string[];
  /** Skeleton keys of the maps in the object's order: user maps by name, internal ones by section ("rodata"). */
  readonly maps: readonly string[];
  /** Sections of globals with variables. */
  readonly globals?: readonly GlobalsSpec[];
  /** Maps with plain key and value types, in the object's order. */
  readonly typedMaps?: readonly TypedMapSpec[];
  /** The record structs' decoders, by C name. */
  readonly records?: Readonly<Record<string, RecordType<unknown>>>;
}

/** What both states of a skeleton have. */
interface SkeletonHandle {
  /** Releases links (pinned ones stay in the kernel) and closes the object. */
  destroy(): void;
  [Symbol.dispose](): void;
}

/**
 * A skeleton between open() and load(): `Before` is its .rodata sections,
 * to set; programs' autoload and maps' sizes and initial values can change.
 * No fds, elements, .data or .bss, links or records yet.
 */
export type OpenSkeleton<P extends string, M extends string, Before, Loaded> = Before &
  SkeletonHandle & {
    readonly obj: OpenObject;
    readonly progs: Readonly<Record<P, OpenProgram>>;
    readonly maps: Readonly<Record<M, OpenMap>>;
    /** Creates the maps and loads the autoload programs: the same skeleton, loaded. */
    load(): Loaded;
  };

/**
 * A loaded skeleton: `After` is its .rodata (read-only now), .data, .bss and
 * typed maps; `R` its record types (NAMERecords), streamed decoded from its
 * ring buffers (`RingMap`) and perf event arrays (`PerfMap`).
 */
export type LoadedSkeleton<P extends string, M extends string, After, R, RingMap extends M = M, PerfMap extends M = M> = After &
  SkeletonHandle & {
    readonly obj: LoadedObject;
    readonly progs: Readonly<Record<P, LoadedProgram>>;
    readonly maps: Readonly<Record<M, LoadedMap>>;
    readonly links: Readonly<Record<P, BpfLink>>;
    attach(): Readonly<Record<P, BpfLink>>;
    /** The records of ring buffer `map`, decoded as struct `struct`: `for await (const ev of skel.ringbuf('events', 'event'))`. */
    ringbuf<S extends keyof R & string>(map: RingMap, struct: S): DecodedRecords<RecordOf<R[S]>>;
    /** The records of perf event array `map`, decoded as struct `struct`. */
    perfbuf<S extends keyof R & string>(map: PerfMap, struct: S, options?: PerfBufferOptions): DecodedRecords<RecordOf<R[S]>>;
  };

export class Skeleton<P extends string, M extends string> {
  readonly obj: BpfObject;
  readonly progs: Readonly<Record<P, BpfProgram>>;
  readonly maps: Readonly<Record<M, BpfMap>>;
  /**
   * The link of each program, once attach() has made it. Reading one that
   * was not made (attach() not called, or the program's autoload was off)
   * throws, saying which.
   */
  readonly links: Readonly<Record<P, BpfLink>>;
  readonly #spec: SkeletonSpec;
  readonly #links = new Map<P, BpfLink>();
  #loaded = false;

  protected constructor(spec: SkeletonSpec, bytes: Uint8Array, options: OpenOptions = {}) {
    const obj = BpfObject.openMem(bytes, { name: spec.name, ...options });
    try {
      const maps = [...obj.maps.values()];
      if (maps.length !== spec.maps.length) {
        throw new Error(`skeleton ${spec.name}: object has ${maps.length} maps, skeleton expects ${spec.maps.length}`);
      }
      this.progs = Object.fromEntries(spec.programs.map((p) => [p, obj.program(p)])) as Record<P, BpfProgram>;
      this.maps = Object.fromEntries(spec.maps.map((m, i) => [m, maps[i]])) as Record<M, BpfMap>;
    } catch (err) {
      obj.close();
      throw err;
    }
    this.obj = obj;
    this.#spec = spec;
    const links = {};
    for (const p of spec.programs as P[]) {
      Object.defineProperty(links, p, {
        enumerable: true,
        get: () => {
          this.#live();
          const link = this.#links.get(p);
          if (!link) throw new Error(`skeleton ${spec.name}: program ${p} has no link (attach() not called, or its autoload is off)`);
          return link;
        },
      });
    }
    this.links = Object.freeze(links) as Record<P, BpfLink>;
  }

  /**
   * The variables of one section of globals, typed by the generated class.
   * .rodata sections can be set between open and load (the programs see them
   * as constants); .data and .bss can be read and written at any time, and
   * after load they are the kernel map's own memory.
   */
  protected globals<T>(property: string): T {
    this.#live();
    const spec = this.#spec.globals?.find((g) => g.property === property);
    if (!spec) throw new Error(`skeleton ${this.#spec.name} has no globals ${property}`);
    const map = (this.maps as Record<string, BpfMap>)[spec.map];
    const readOnly = spec.layout.section.startsWith('.rodata');
    const section = `${spec.layout.section} of skeleton ${this.#spec.name}`;
    return sectionVars<T>(spec.layout, {
      assertOpen: () => void this.obj.assertOpen(section),
      read: () => map.readImage(),
      write: (offset, bytes) => {
        if (!this.#loaded) {
          const image = map.readImage();
          bytes.copy(image, offset);
          map.setInitialValue(image);
        } else if (readOnly) {
          throw new Error(`${spec.layout.section} of ${this.obj.name} is read-only once loaded: set it between open() and load()`);
        } else {
          map.writeImage(offset, bytes);
        }
      },
    });
  }

  /**
   * One TypedMap per map of spec.typedMaps, under its skeleton key, with
   * codecs made from the key and value types; typed by the generated class.
   */
  protected typedMaps<T>(): T {
    this.#live();
    const maps = this.maps as Record<string, BpfMap>;
    const views = (this.#spec.typedMaps ?? []).map(({ map, key, value }): [string, TypedMap<unknown, unknown>] => [
      map,
      maps[map].typed(typeCodec(key, `map ${map} key`), typeCodec(value, `map ${map} value`)),
    ]);
    return Object.freeze(Object.fromEntries(views)) as T;
  }

  /** Loads the object; returns this skeleton (typed as loaded by the generated class). */
  load(): this {
    this.#live();
    this.obj.load();
    this.#loaded = true;
    for (const g of this.#spec.globals ?? []) {
      (this.maps as Record<string, BpfMap>)[g.map].mapImage(g.layout.section.startsWith('.rodata'));
    }
    return this;
  }

  /** The records of ring buffer `map`, each decoded as struct `struct` of the object. */
  ringbuf(map: M, struct: string): DecodedRecords<unknown> {
    const type = this.#recordType(struct);
    return new DecodedRecords(new RingBuffer(this.maps[map].fd, map), type);
  }

  /** The records of perf event array `map`, each decoded as struct `struct` of the object. */
  perfbuf(map: M, struct: string, options?: PerfBufferOptions): DecodedRecords<unknown> {
    const type = this.#recordType(struct);
    return new DecodedRecords(new PerfBuffer(this.maps[map].fd, map, options), type);
  }

  #recordType(struct: string): RecordType<unknown> {
    this.#live();
    const type = Object.hasOwn(this.#spec.records ?? {}, struct) ? this.#spec.records![struct] : undefined;
    if (!type) {
      const known = Object.keys(this.#spec.records ?? {});
      throw new Error(
        `skeleton ${this.#spec.name} has no record struct ${struct} (${known.length ? `it has ${known.join(', ')}` : 'it has none'}; see Typed records in docs/libbpf.md)`,
      );
    }
    return type;
  }

  /**
   * Attaches every loaded program as its section says (iterators get an
   * iterator link). All or nothing: on failure the links made here are released.
   */
  attach(): Readonly<Record<P, BpfLink>> {
    this.#live();
    const made: P[] = [];
    try {
      for (const [name, prog] of Object.entries(this.progs) as [P, BpfProgram][]) {
        if (!prog.autoload || this.#links.has(name)) continue;
        this.#links.set(name, prog.attach());
        made.push(name);
      }
    } catch (err) {
      for (const name of made) {
        this.#links.get(name)?.destroy();
        this.#links.delete(name);
      }
      throw err;
    }
    return this.links;
  }

  // After destroy(), every use names the skeleton rather than one of its parts.
  #live(): void {
    this.obj.assertOpen(`skeleton ${this.#spec.name}`);
  }

  /** Releases links (pinned ones stay in the kernel) and closes the object. */
  destroy(): void {
    for (const link of this.#links.values()) link.destroy();
    this.#links.clear();
    this.obj.close();
  }

  [Symbol.dispose](): void {
    this.destroy();
  }
}
