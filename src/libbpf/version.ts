import { native } from './sys/native.js';

/** "1.1" for the libbpf.so.1 this process bound to. */
export function libbpfVersion(): string {
  const n = native();
  return `${n.libbpf_major_version()}.${n.libbpf_minor_version()}`;
}
