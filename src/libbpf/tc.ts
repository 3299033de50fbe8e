// A tc program on an interface's clsact qdisc, through libbpf 1.1's netlink
// API (bpf_tc_*): not a BPF link, so it is detached explicitly, or goes with
// the interface. The qdisc is created when missing and left in place.
import { constants } from 'node:os';
import { callInt } from './sys/call.js';
import { native } from './sys/native.js';
import { BPF_TC_EGRESS, BPF_TC_INGRESS } from './sys/uapi.js';

const { EEXIST } = constants.errno;

export type TcAttachPoint = 'ingress' | 'egress';

const ATTACH_POINT: Record<TcAttachPoint, number> = { ingress: BPF_TC_INGRESS, egress: BPF_TC_EGRESS };

export class TcAttachment implements Disposable {
  readonly name: string;
  readonly ifindex: number;
  readonly point: TcAttachPoint;
  /** The filter's handle and priority, as the kernel chose them. */
  readonly handle: number;
  readonly priority: number;
  #attached = true;

  private constructor(name: string, ifindex: number, point: TcAttachPoint, handle: number, priority: number) {
    this.name = name;
    this.ifindex = ifindex;
    this.point = point;
    this.handle = handle;
    this.priority = priority;
  }

  /** @internal Use BpfProgram.attachTc. */
  static attach(progFd: number, ifindex: number, point: TcAttachPoint, name: string): TcAttachment {
    const n = native();
    const hook = TcAttachment.#hook(ifindex, point);
    const made = n.bpf_tc_hook_create(hook);
    if (made !== -EEXIST) callInt(`create clsact qdisc on ifindex ${ifindex}`, () => made);
    const opts = { sz: n.tcOptsSize, prog_fd: progFd, flags: 0, prog_id: 0, handle: 0, priority: 0 };
    callInt(`attach ${name} to tc ${point} of ifindex ${ifindex}`, () => n.bpf_tc_attach(hook, opts));
    return new TcAttachment(name, ifindex, point, opts.handle, opts.priority);
  }

  static #hook(ifindex: number, point: TcAttachPoint) {
    return { sz: native().tcHookSize, ifindex, attach_point: ATTACH_POINT[point], parent: 0 };
  }

  /** Removes the filter. */
  detach(): void {
    if (!this.#attached) return;
    this.#attached = false;
    const n = native();
    const opts = { sz: n.tcOptsSize, prog_fd: 0, flags: 0, prog_id: 0, handle: this.handle, priority: this.priority };
    callInt(`detach ${this.name} from tc ${this.point} of ifindex ${this.ifindex}`, () => n.bpf_tc_detach(TcAttachment.#hook(this.ifindex, this.point), opts));
  }

  [Symbol.dispose](): void {
    this.detach();
  }
}
