// The Debian package's maintainer scripts. They follow the conventions
// debhelper's dh_installsystemd uses (deb-systemd-helper keeps the enablement
// state, deb-systemd-invoke respects policy-rc.d, nothing is started where
// systemd is not running, as in a chroot or an image build), with one
// difference: an upgrade reloads the unit instead of stopping it before and
// starting it after, because stopping unpins and the files would be missing
// in between. ExecReload populates, which replaces our pins atomically.
import { EXPORTER_UNIT_NAME, UNIT_NAME } from '../src/cli/unit.js';

const header = (what: string) => `#!/bin/sh
# ${what}
set -e
unit=${UNIT_NAME}
# Shipped, never enabled here: an administrator enables it.
exporter=${EXPORTER_UNIT_NAME}
`;

export const POSTINST = `${header('Enables the unit and, where systemd is running, starts it (or reloads it on an upgrade).')}
case "$1" in
configure | abort-upgrade | abort-deconfigure | abort-remove)
	# was-enabled is true on a first install, so the unit gets enabled; on an
	# upgrade an administrator's \`systemctl disable\` is kept.
	if deb-systemd-helper --quiet was-enabled "$unit"; then
		deb-systemd-helper enable "$unit" >/dev/null || true
	else
		deb-systemd-helper update-state "$unit" >/dev/null || true
	fi
	if [ -d /run/systemd/system ]; then
		systemctl --system daemon-reload >/dev/null || true
		if [ -n "$2" ]; then
			# Upgraded from $2: re-populate with the new code if it is running.
			deb-systemd-invoke try-reload-or-restart "$unit" >/dev/null || true
			# A running exporter restarts on the new code (scrapes in flight finish first).
			deb-systemd-invoke try-restart "$exporter" >/dev/null || true
		fi
		# Starts an enabled unit that is not running; nothing otherwise.
		deb-systemd-invoke start "$unit" >/dev/null || true
	fi
	;;
esac
exit 0
`;

export const PRERM = `${header("Stops the units when the package is removed: the populate unit's ExecStop unpins the files.")}
# Not on an upgrade: the unit keeps running and postinst reloads it.
if [ "$1" = remove ] && [ -d /run/systemd/system ]; then
	deb-systemd-invoke stop "$unit" "$exporter" >/dev/null || true
fi
exit 0
`;

export const POSTRM = `${header("On purge, removes what postinst made: the unit's enablement links and their record.")}
case "$1" in
remove)
	if [ -d /run/systemd/system ]; then
		systemctl --system daemon-reload >/dev/null || true
	fi
	;;
purge)
	if command -v deb-systemd-helper >/dev/null; then
		deb-systemd-helper purge "$unit" >/dev/null || true
	fi
	;;
esac
exit 0
`;
