// Where the Debian package puts things, and what it is called: shared by the
// package builder (build/package.ts) and the tests that look inside it.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { EXPORTER_UNIT_NAME, PACKAGE_UNIT_DIR, UNIT_NAME } from '../src/cli/unit.js';

const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { name: string; version: string };

export const PACKAGE = pkg.name;
export const VERSION = pkg.version;
/** The version the tests upgrade to: the same package rebuilt, with a bumped version. */
export const UPGRADE_VERSION = `${VERSION}+1`;

/** The node the package runs on: Debian's nodejs package puts it here. */
export const DEB_NODE = '/usr/bin/node';
/** The code: the bundled CLI (.mjs: an ES module without a package.json beside it) and koffi. */
export const DEB_CODE_DIR = `/usr/lib/${PACKAGE}`;
export const DEB_CLI = `${DEB_CODE_DIR}/${PACKAGE}.mjs`;
/** A symlink to DEB_CLI. */
export const DEB_BIN = `/usr/bin/${PACKAGE}`;
export const DEB_UNIT = join(PACKAGE_UNIT_DIR, UNIT_NAME);
/** The exporter's unit: shipped, not enabled. */
export const DEB_EXPORTER_UNIT = join(PACKAGE_UNIT_DIR, EXPORTER_UNIT_NAME);
export const DEB_MAN = `/usr/share/man/man8/${PACKAGE}.8.gz`;
export const DEB_DOC_DIR = `/usr/share/doc/${PACKAGE}`;

/**
 * koffi's prebuilt native module for each Debian architecture, where
 * src/libbpf/sys/native.ts finds it (`${process.platform}_${process.arch}`).
 */
export const KOFFI_DIR_OF_ARCH: Record<string, string> = {
  amd64: 'linux_x64',
  arm64: 'linux_arm64',
  i386: 'linux_ia32',
  loong64: 'linux_loong64',
};

export function koffiModulePath(arch: string): string {
  return `${DEB_CODE_DIR}/node_modules/koffi/build/koffi/${KOFFI_DIR_OF_ARCH[arch]}/koffi.node`;
}

export function debFileName(version: string, arch: string): string {
  return `${PACKAGE}_${version}_${arch}.deb`;
}
