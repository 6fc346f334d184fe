import net from "node:net";

/** True for addresses of this machine's loopback interface: 127.0.0.0/8, ::1, and IPv4-mapped 127.x. */
export function isLoopbackAddress(address: string | undefined | null): boolean {
  if (!address) return false;
  let a = address.trim().toLowerCase();
  if (a.startsWith("[") && a.endsWith("]")) a = a.slice(1, -1);
  const zone = a.indexOf("%");
  if (zone >= 0) a = a.slice(0, zone);
  if (a.startsWith("::ffff:")) a = a.slice("::ffff:".length);
  if (net.isIPv4(a)) return a.startsWith("127.");
  if (net.isIPv6(a)) return a === "::1" || a === "0:0:0:0:0:0:0:1";
  return false;
}

/** True for a listen host that only accepts connections from this machine. */
export function isLoopbackHost(host: string): boolean {
  const h = host.trim().toLowerCase();
  return h === "localhost" || h.endsWith(".localhost") || isLoopbackAddress(h);
}
