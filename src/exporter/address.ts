// Where the exporter listens: its default address and the --listen syntax.

/**
 * Outside Prometheus's default-port allocations (9100-9999, all taken), and
 * not a service in /etc/services (Debian's copy of the well-known ports).
 */
export const DEFAULT_PORT = 10099;
export const DEFAULT_LISTEN = `127.0.0.1:${DEFAULT_PORT}`;

export interface ListenAddress {
  host: string;
  port: number;
}

/** ADDR:PORT, with an IPv6 ADDR in brackets; null if it is not one. */
export function parseListen(value: string): ListenAddress | null {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(value);
  if (!m) return null;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return null;
  return { host: m[1] ?? m[2], port };
}

export function formatListen(l: ListenAddress): string {
  return l.host.includes(':') ? `[${l.host}]:${l.port}` : `${l.host}:${l.port}`;
}
