// Run by test/libbpf-net.test.ts as `unshare --net node netns-attach.mjs OBJECT`:
// in a network namespace of its own, makes a veth pair, attaches the
// object's xdp and tc programs to veth1 through the built library
// (dist/libbpf), sends broadcast datagrams out of veth0 and prints, as JSON,
// what the programs counted while attached and, after detaching, during a
// second round.
import { spawnSync } from 'node:child_process';
import dgram from 'node:dgram';
import { setTimeout as sleep } from 'node:timers/promises';
import { BpfObject, codecs, ifindex } from '../../dist/libbpf/index.js';

const KEY_XDP = 4;
const KEY_TC = 5;
const SENT = 5;

function ip(...args) {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr.trim()}`);
}

async function broadcast(n) {
  const socket = dgram.createSocket('udp4');
  await new Promise((resolve) => socket.bind(0, '10.201.0.1', () => resolve(undefined)));
  socket.setBroadcast(true);
  for (let i = 0; i < n; i++) await new Promise((resolve, reject) => socket.send('x', 9, '10.201.0.255', (e) => (e ? reject(e) : resolve(undefined))));
  socket.close();
  await sleep(300); // the peer's NAPI poll runs the programs
}

ip('link', 'add', 'veth0', 'type', 'veth', 'peer', 'name', 'veth1');
ip('addr', 'add', '10.201.0.1/24', 'dev', 'veth0');
ip('link', 'set', 'veth0', 'up');
ip('link', 'set', 'veth1', 'up');

// Plain JavaScript on Node 20 has no `using`: release explicitly.
const obj = BpfObject.openFile(process.argv[2]);
obj.load();
const counts = obj.map('counts').typed(codecs.u32, codecs.u64);
const read = () => ({ xdp: Number(counts.get(KEY_XDP) ?? 0n), tc: Number(counts.get(KEY_TC) ?? 0n) });

const xdp = obj.program('on_xdp').attachXdp(ifindex('veth1'));
const tc = obj.program('on_tc').attachTc(ifindex('veth1'), 'ingress');
const xdpLinkType = xdp.info().type;
await broadcast(SENT);
const attached = read();
xdp.destroy();
tc.detach();
// Counted from here: a packet of the kernel's own may have come in between.
const before = read();
await broadcast(SENT);
const after = read();
const detached = { xdp: after.xdp - before.xdp, tc: after.tc - before.tc };
obj.close();
console.log(JSON.stringify({ sent: SENT, attached, detached, xdpLinkType, tcHandle: tc.handle, tcPriority: tc.priority }));
