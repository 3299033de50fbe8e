// Network interfaces by name, for attaching xdp and tc programs.
import { constants } from 'node:os';
import { SysError } from '../error.js';
import { native } from './native.js';

const { ENODEV } = constants.errno;

/** The index of the network interface `name` in this thread's network namespace. */
export function ifindex(name: string): number {
  const n = native();
  const index = n.if_nametoindex(name);
  if (index === 0) throw new SysError('if_nametoindex', `find network interface ${name}`, n.errno() || ENODEV);
  return index;
}
