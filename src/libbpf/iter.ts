// Reading an iterator without pinning it: BPF_ITER_CREATE gives an fd whose
// reads run the iterator program once, start to end, as reading a pinned
// iterator file does.
import { readSync } from 'node:fs';
import { callInt } from './call.js';
import { withFd } from './info.js';
import { native } from './native.js';

/** One full pass of the iterator behind `linkFd`: every byte it prints. */
export function readIterator(linkFd: number): Buffer {
  const fd = callInt(`create iterator from link fd ${linkFd}`, () => native().bpf_iter_create(linkFd));
  return withFd(fd, (fd) => {
    const chunks: Buffer[] = [];
    // iterator fds cannot seek: read sequentially until it says it is done
    for (;;) {
      const chunk = Buffer.alloc(64 * 1024);
      const n = readSync(fd, chunk, 0, chunk.length, null);
      if (n === 0) return Buffer.concat(chunks);
      chunks.push(chunk.subarray(0, n));
    }
  });
}
