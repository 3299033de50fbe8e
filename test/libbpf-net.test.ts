// xdp and tc programs on a real interface: a veth pair in a network
// namespace of the test's own (unshare --net), so the host's interfaces are
// never touched and everything goes with the namespace. The work runs in a
// child process (test/lib/netns-attach.mjs) using the built library.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { fixture } from './lib/fixtures.js';

const BPF_LINK_TYPE_XDP = 6;

t.test('xdp (a BPF link) and tc (a clsact filter) see the packets sent to a veth, and stop once detached', async (t) => {
  const r = spawnSync('unshare', ['--net', process.execPath, 'test/lib/netns-attach.mjs', fixture('library')], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  t.equal(r.status, 0, r.status ? r.stderr : 'child exit 0');
  const got = JSON.parse(r.stdout || '{}') as {
    sent: number;
    attached: { xdp: number; tc: number };
    detached: { xdp: number; tc: number };
    xdpLinkType: number;
    tcHandle: number;
    tcPriority: number;
  };
  t.equal(got.xdpLinkType, BPF_LINK_TYPE_XDP, 'the xdp attachment is an XDP link');
  t.ok(got.tcHandle > 0 && got.tcPriority > 0, 'the kernel gave the tc filter a handle and priority');
  // IPv6 autoconfiguration may add packets of its own: at least ours arrive.
  t.ok(got.attached.xdp >= got.sent, `xdp counted our ${got.sent} datagrams (${got.attached.xdp})`);
  t.ok(got.attached.tc >= got.sent, `tc counted our ${got.sent} datagrams (${got.attached.tc})`);
  t.same(got.detached, { xdp: 0, tc: 0 }, 'nothing counted after detaching');
});
