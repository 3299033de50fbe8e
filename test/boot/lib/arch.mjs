// The guest architectures: everything that differs between an x86-64 and an
// arm64 guest is a field here, so the rest of the harness (kernel picker, root
// file system, payload, qemu) takes an architecture and never names one.

/**
 * deb: Debian's architecture name; triplet: its multiarch directory.
 * suite: the Debian release of the guests' root file system, whose own
 *   nodejs the guests run (bookworm's 18 is the oldest we support).
 * qemu: the system emulator and its machine; console: the serial console's
 *   device name and the kernel option that must be built in for it.
 * timeoutScale: software emulation of another instruction set is slower.
 */
export const ARCHES = {
  amd64: {
    deb: 'amd64',
    triplet: 'x86_64-linux-gnu',
    suite: 'bookworm',
    qemu: { binary: 'qemu-system-x86_64', package: 'qemu-system-x86', args: ['-machine', 'pc', '-cpu', 'max'] },
    console: { device: 'ttyS0', config: 'CONFIG_SERIAL_8250_CONSOLE' },
    timeoutScale: 1,
  },
  arm64: {
    deb: 'arm64',
    triplet: 'aarch64-linux-gnu',
    suite: 'trixie',
    // pauth-impdef: pointer authentication with qemu's cheap hash instead of
    // QARMA, which costs a lot under emulation (the kernel signs return addresses).
    qemu: { binary: 'qemu-system-aarch64', package: 'qemu-system-arm', args: ['-machine', 'virt', '-cpu', 'max,pauth-impdef=on'] },
    console: { device: 'ttyAMA0', config: 'CONFIG_SERIAL_AMBA_PL011_CONSOLE' },
    timeoutScale: 2.5,
  },
};

/** Debian's name for the architecture this machine runs. */
export const HOST_ARCH = { x64: 'amd64', arm64: 'arm64' }[process.arch] ?? process.arch;

/** The qemu-user binfmt_misc entry that lets this machine run the architecture's programs (chroot). */
export const binfmtName = (arch) => `qemu-${arch.triplet.split('-')[0]}`;
