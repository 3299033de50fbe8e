// Drives the objects helper (objects.c): one process that holds N programs
// and N maps loaded for as long as it lives. Killing it frees them all, which
// is also what cleanup does if the bench stops early.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { onCleanup } from './cleanup.js';

export class LoadedObjects {
  private readonly lines: string[] = [];
  private waiter: (() => void) | null = null;
  private exited: string | null = null;
  private readonly release: () => void;

  private constructor(private readonly child: ChildProcess) {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      this.lines.push(line);
      this.waiter?.();
    });
    child.on('exit', (code, signal) => {
      this.exited = signal ?? `exit ${code}`;
      this.waiter?.();
    });
    this.release = onCleanup('loaded benchmark programs and maps', () => {
      if (this.exited === null) child.kill('SIGKILL');
    });
  }

  static start(helper: string): LoadedObjects {
    return new LoadedObjects(spawn(helper, [], { stdio: ['pipe', 'pipe', 'inherit'] }));
  }

  /** Grows to `n` programs and `n` maps; resolves once they are all loaded. */
  async grow(n: number): Promise<void> {
    this.child.stdin!.write(`${n}\n`);
    for (;;) {
      const line = this.lines.shift();
      if (line === `ready ${n}`) return;
      if (line !== undefined) throw new Error(`objects helper said ${JSON.stringify(line)}`);
      if (this.exited !== null) throw new Error(`objects helper ended (${this.exited}) before loading ${n}`);
      await new Promise<void>((resolve) => (this.waiter = resolve));
      this.waiter = null;
    }
  }

  /** Ends the helper; the kernel frees its objects once their fds are closed. */
  async stop(): Promise<void> {
    if (this.exited === null) {
      const gone = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
      this.child.stdin!.end();
      await gone;
    }
    this.release();
  }
}
