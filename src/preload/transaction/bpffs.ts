// The bpffs side of pinning: is a directory on one, mounting the default one,
// and BpffsDir, a bpffs directory opened once and changed only through its
// fd. A bpffs mounted without mode= is world-writable with the sticky bit, so
// any local user can put symlinks, directories and FIFOs in it; a path looked
// up again for every change would follow them. A BpffsDir never looks a path
// up twice: the directory is opened with O_NOFOLLOW and checked once, every
// change is an *at call on its fd, and nothing in it is followed.
import { spawnSync } from 'node:child_process';
import { closeSync, fstatSync, lstatSync, readFileSync, readdirSync, statSync, statfsSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { PreloadError } from '../../errors.js';
import { ErrnoError, SysError, objGet, objPin } from '../../libbpf/index.js';
import { sleepSync } from './sleep.js';
import {
  O_DIRECTORY,
  O_NOFOLLOW,
  O_NONBLOCK,
  O_RDONLY,
  fchmod,
  mkdirAt,
  openAt,
  readlinkAt,
  renameAt,
  rmdirAt,
  symlinkAt,
  unlinkAt,
} from '../../libbpf/sys/dirfd.js';
import { AT_FDCWD, BPF_FS_MAGIC, CAP_BPF, CAP_SYS_ADMIN } from '../../libbpf/sys/linux.js';

export const DEFAULT_BPFFS = '/sys/fs/bpf';

/** Whether `dir` lives on a bpffs (statfs magic). Throws for a missing path. */
export function isOnBpffs(dir: string): boolean {
  return statfsSync(dir).type === BPF_FS_MAGIC;
}

/**
 * Checks `dir` is an existing directory on a bpffs. The default location gets
 * a bpffs mounted if it has none, with mode 0700 as systemd mounts it.
 */
function requireBpffs(dir: string, mountIfMissing: boolean): void {
  let st;
  try {
    st = statSync(dir);
  } catch {
    throw new PreloadError(`${dir} does not exist: create it on a bpffs, or mount one (mount -t bpf bpf ${dir})`);
  }
  if (!st.isDirectory()) throw new PreloadError(`${dir} is not a directory: give --bpffs a directory on a bpffs`);
  if (isOnBpffs(dir)) return;
  if (!mountIfMissing) {
    throw new PreloadError(`${dir} is not on a bpffs: mount one there (mount -t bpf bpf ${dir}) or pick another --bpffs`);
  }
  const r = spawnSync('mount', ['-t', 'bpf', '-o', 'mode=0700', 'bpf', dir], { encoding: 'utf8' });
  if (r.status !== 0 || !isOnBpffs(dir)) {
    const why = (r.stderr || r.error?.message || '').trim().split('\n')[0];
    throw new PreloadError(`cannot mount a bpffs at ${dir}${why ? ` (${why})` : ''}: run as root, or mount it first`);
  }
}

export const octal = (mode: number) => `0${mode.toString(8).padStart(3, '0')}`;

/** The uid the runner runs as (root, in the unit). */
const runnerUid = () => process.geteuid?.() ?? 0;

/** Whose files we trust: the runner's uid, and root's (who could change anything anyway). */
const trustedUid = (uid: number) => uid === runnerUid() || uid === 0;

/** Whether an entry was made by a uid we trust (lstat owner): ours, for the runner as root. */
export const ownedByUs = (st: Stats) => trustedUid(st.uid);

/**
 * Changing a bpffs takes root, or CAP_BPF (or CAP_SYS_ADMIN) to load and
 * pin: said in one line before anything else is tried, for an unprivileged
 * caller would otherwise meet a lock directory or a directory it cannot use.
 */
function requirePrivileges(path: string): void {
  if (runnerUid() === 0) return;
  const capEff = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
  const caps = capEff ? BigInt(`0x${capEff}`) : 0n;
  if ((caps >> BigInt(CAP_BPF)) & 1n || (caps >> BigInt(CAP_SYS_ADMIN)) & 1n) return;
  throw new PreloadError(`cannot change ${path}: needs root, or CAP_BPF + CAP_PERFMON`);
}

/**
 * Why a directory cannot be trusted with our pins, or null when it can: it
 * must be a directory of the runner's uid that no other uid can write. A
 * bpffs root may be writable by others if it has the sticky bit (the kernel's
 * default mount, drwxrwxrwt): nobody else can then rename or remove our
 * entries; a preload/ of ours never is.
 */
export function untrustedDir(st: Stats, stickyWritableOk: boolean): string | null {
  if (st.isSymbolicLink()) return 'is a symlink';
  if (!st.isDirectory()) return 'is not a directory';
  if (!ownedByUs(st)) return 'belongs to another uid';
  if (st.mode & 0o022 && !(stickyWritableOk && st.mode & 0o1000)) return `is writable by other users (mode ${octal(st.mode & 0o7777)})`;
  return null;
}

// Undoing a change must not give up on the first error: a transient failure
// (EINTR, EIO, ENOMEM) would otherwise leave the directory changed for good.
const TRIES = 3;
function persist(fn: () => void): void {
  for (let i = 1; ; i++) {
    try {
      return fn();
    } catch (err) {
      if (i >= TRIES) throw err;
      sleepSync(5 * i);
    }
  }
}

/** Runs `remove` until it succeeds (or finds nothing to remove): see persist. */
function removeIfThere(remove: () => void): void {
  persist(() => {
    try {
      remove();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  });
}

const DIR_FLAGS = O_RDONLY | O_DIRECTORY | O_NOFOLLOW;

/** A directory on a bpffs, opened once; every look and change is relative to its fd. */
export class BpffsDir implements Disposable {
  #fd: number;
  /** The path it was opened by, for messages only: never looked up again. */
  readonly path: string;
  /** Its bpffs instance (st_dev) and inode: what a lock is keyed by. */
  readonly dev: number;
  readonly ino: number;

  private constructor(path: string, fd: number, st: Stats) {
    this.path = path;
    this.#fd = fd;
    this.dev = st.dev;
    this.ino = st.ino;
  }

  /**
   * Opens the bpffs directory `path` (mounting the default one if asked).
   * To `change` it, the caller must be privileged, and a directory another
   * uid could change is refused (see untrustedDir); `status` opens it only
   * to look, and reports whatever it finds.
   */
  static open(path: string, opts: { mountIfMissing?: boolean; change: boolean }): BpffsDir {
    requireBpffs(path, opts.mountIfMissing ?? false);
    if (opts.change) requirePrivileges(path);
    let fd: number;
    try {
      fd = openAt(AT_FDCWD, path, DIR_FLAGS, `open ${path}`);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ELOOP') throw new PreloadError(`${path} is a symlink: give --bpffs the directory itself`);
      throw err;
    }
    try {
      const st = fstatSync(fd);
      // The directory opened is the one checked above, not one swapped in since.
      if (!st.isDirectory() || statfsSync(`/proc/self/fd/${fd}`).type !== BPF_FS_MAGIC) {
        throw new PreloadError(`${path} changed while it was being opened: run again`);
      }
      const why = opts.change ? untrustedDir(st, true) : null; // fstat: not a symlink
      if (why) {
        throw new PreloadError(
          `${new UntrustedDir(path, why, st.uid).message}: bpf-preload pins only where no other user can change its files; mount the bpffs with mode=0700 (as systemd does) or give --bpffs a directory of root's`,
        );
      }
      return new BpffsDir(path, fd, st);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
  }

  /**
   * Opens the subdirectory `name`, never through a symlink, and only if it is
   * on the same bpffs instance and trusted (ours, writable by no one else).
   * Throws a PreloadError saying why not.
   */
  openDir(name: string): BpffsDir {
    const path = this.display(name);
    let fd: number;
    try {
      fd = openAt(this.fd, name, DIR_FLAGS, `open ${path}`);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ELOOP' || code === 'ENOTDIR') {
        const st = this.lstat(name);
        throw new UntrustedDir(path, st?.isSymbolicLink() ? 'is a symlink' : 'is not a directory', st?.uid);
      }
      throw err;
    }
    try {
      const st = fstatSync(fd);
      const why = st.dev !== this.dev ? 'is on another file system' : untrustedDir(st, false);
      if (why) throw new UntrustedDir(path, why, st.uid);
      return new BpffsDir(path, fd, st);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
  }

  get fd(): number {
    if (this.#fd < 0) throw new Error(`${this.path}: used after close`);
    return this.#fd;
  }

  /** `name`'s path for messages. */
  display(name: string): string {
    return join(this.path, name);
  }

  /**
   * A path that reaches `name` in this very directory: the kernel resolves
   * /proc/self/fd/N to the open directory, whatever its path names now. For
   * the calls that only take paths (bpf_obj_pin, bpf_obj_get, lstat, readdir).
   */
  viaFd(name?: string): string {
    return name === undefined ? `/proc/self/fd/${this.fd}` : `/proc/self/fd/${this.fd}/${name}`;
  }

  /**
   * lstat of `name` (never followed), or undefined when nothing is there.
   * bpffs answers a lookup of a dotted name that is not there with EPERM
   * (unless the directory's mode is 0): that too means nothing is there.
   */
  lstat(name: string): Stats | undefined {
    try {
      return lstatSync(this.viaFd(name));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'EPERM') return undefined;
      if (code === 'EACCES') throw new PreloadError(`cannot look into ${this.path}: needs root`);
      throw err;
    }
  }

  /** The names in the directory. */
  list(): string[] {
    return readdirSync(this.viaFd());
  }

  /** Why bpf-preload would not pin here (see untrustedDir), or null. */
  untrusted(): string | null {
    return untrustedDir(fstatSync(this.fd), true);
  }

  /** Permission bits of the directory itself (sticky and set-id bits included). */
  mode(): number {
    return fstatSync(this.fd).mode & 0o7777;
  }

  /**
   * Sets the directory's permission bits, trying again on failure. bpffs
   * accepts names with a dot (progs.debug) only while a directory has none,
   * which is how the kernel populates a fresh mount; we do the same, and put
   * the mode back with this.
   */
  setMode(mode: number): void {
    persist(() => fchmod(this.fd, mode, `chmod ${octal(mode)} ${this.path}`));
  }

  /** Opens the pinned object `name`, after checking it is a file and not a symlink (bpf_obj_get follows those). */
  objGet(name: string): number {
    const st = this.lstat(name);
    if (st && !st.isFile()) throw new PreloadError(`${this.display(name)} is not a pinned object`);
    return this.#named(`open pinned object ${this.display(name)}`, () => objGet(this.viaFd(name)));
  }

  /** Pins the object behind `fd` (a link, a program, a map) as `name` here. */
  pin(fd: number, name: string): void {
    try {
      this.#named(`pin ${this.display(name)}`, () => objPin(fd, this.viaFd(name)));
    } catch (err) {
      if (!(err instanceof ErrnoError && err.code === 'EEXIST')) throw err;
      const st = this.lstat(name);
      const whose = st ? ` (owner uid ${st.uid})` : '';
      throw new PreloadError(`${this.display(name)} is in the way${whose}, not a pin of this run: remove it, then run again`);
    }
  }

  /** Runs a bpf() call made through viaFd, its failure named by the path users know. */
  #named<T>(what: string, fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      if (err instanceof ErrnoError) throw new SysError('bpf', what, err.errno, err.log);
      throw err;
    }
  }

  /**
   * Opens the pinned file `name` for reading: never through a symlink, never
   * blocking (a FIFO in its place cannot hang the run), and only if it is a
   * file of ours on this bpffs. Returns the fd.
   */
  openOurFile(name: string): number {
    const path = this.display(name);
    const fd = openAt(this.fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK, `open ${path}`);
    const st = fstatSync(fd);
    if (!st.isFile() || !ownedByUs(st) || st.dev !== this.dev) {
      closeSync(fd);
      throw new PreloadError(`${path} is not the file bpf-preload pinned there (something replaced it): run again`);
    }
    return fd;
  }

  rename(from: string, to: string): void {
    renameAt(this.fd, from, to, `rename ${this.display(from)} to ${this.display(to)}`);
  }

  symlink(target: string, name: string): void {
    symlinkAt(target, this.fd, name, `symlink ${this.display(name)}`);
  }

  readlink(name: string): string {
    return readlinkAt(this.fd, name, `readlink ${this.display(name)}`);
  }

  mkdir(name: string, mode: number): void {
    mkdirAt(this.fd, name, mode, `mkdir ${this.display(name)}`);
  }

  /** Removes a pin or symlink, trying again on failure; one already gone is fine. */
  remove(name: string): void {
    removeIfThere(() => unlinkAt(this.fd, name, `remove ${this.display(name)}`));
  }

  /** Removes an empty directory, trying again on failure; one already gone is fine. */
  removeDir(name: string): void {
    removeIfThere(() => rmdirAt(this.fd, name, `rmdir ${this.display(name)}`));
  }

  /** The subdirectory `name` if there is one: open when trusted, else why not (see openDir). */
  openDirIfThere(name: string): BpffsDir | UntrustedDir | undefined {
    if (!this.lstat(name)) return undefined;
    try {
      return this.openDir(name);
    } catch (err) {
      if (err instanceof UntrustedDir) return err;
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  close(): void {
    if (this.#fd < 0) return;
    closeSync(this.#fd);
    this.#fd = -1;
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * The directories our pins may be in: the bpffs root, then its
 * FALLBACK_SUBDIR when there is one of ours (`fallback`, opened by the caller,
 * who holds it for as long as it needs it).
 */
export function pinDirs(root: BpffsDir, fallback: BpffsDir | undefined): BpffsDir[] {
  return fallback ? [root, fallback] : [root];
}

/** A directory we will not use: not ours, writable by others, a symlink, or elsewhere. */
export class UntrustedDir extends PreloadError {
  constructor(
    readonly path: string,
    readonly why: string,
    /** Its owner, when it could be seen. */
    readonly uid?: number,
  ) {
    // Whose it is, when that is someone else: what an admin needs to know.
    super(`${path} ${why}${uid !== undefined && !trustedUid(uid) ? ` (owner uid ${uid})` : ''}`);
    this.name = 'UntrustedDir';
  }
}
