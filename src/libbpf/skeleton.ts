// What every generated skeleton (skel/*.skel.ts) shares: open an embedded
// object, expose its programs and maps under typed names, attach, destroy.
// Generated files only add the bytes and the names, as bpftool's do.
import { BpfObject, type BpfMap, type BpfProgram, type OpenOptions } from './object.js';
import type { BpfLink } from './link.js';

export interface SkeletonSpec {
  /** Object name used when none is given to open(). */
  readonly name: string;
  /** Program names, in the object's order. */
  readonly programs: readonly string[];
  /** Skeleton keys of the maps in the object's order: user maps by name, internal ones by section ("rodata"). */
  readonly maps: readonly string[];
}

export class Skeleton<P extends string, M extends string> {
  readonly obj: BpfObject;
  readonly progs: Readonly<Record<P, BpfProgram>>;
  readonly maps: Readonly<Record<M, BpfMap>>;
  /** Links made by attach(), by program name. */
  readonly links: Partial<Record<P, BpfLink>> = {};

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
  }

  load(): void {
    this.obj.load();
  }

  /**
   * Attaches every loaded program as its section says (iterators get an
   * iterator link). All or nothing: on failure the links made here are released.
   */
  attach(): void {
    const made: P[] = [];
    try {
      for (const [name, prog] of Object.entries(this.progs) as [P, BpfProgram][]) {
        if (!prog.autoload || this.links[name]) continue;
        this.links[name] = prog.sectionName.startsWith('iter/') ? prog.attachIter() : prog.attach();
        made.push(name);
      }
    } catch (err) {
      for (const name of made) {
        this.links[name]?.destroy();
        delete this.links[name];
      }
      throw err;
    }
  }

  /** Releases links (pinned ones stay in the kernel) and closes the object. */
  destroy(): void {
    for (const link of Object.values(this.links) as BpfLink[]) link.destroy();
    this.obj.close();
  }

  [Symbol.dispose](): void {
    this.destroy();
  }
}
