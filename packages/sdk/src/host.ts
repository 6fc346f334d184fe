/** Port the llmos daemon listens on by default. */
export const DEFAULT_PORT = 11435;

/** Base URL the client uses when neither an option nor `LLMOS_HOST` names one. */
export const DEFAULT_HOST = `http://127.0.0.1:${DEFAULT_PORT}`;

/**
 * Normalises a host setting the way `OLLAMA_HOST` is read:
 * a bare port (`8080` or `:8080`) means loopback on that port; `host` or `host:port` without a scheme means
 * `http://` with default port {@link DEFAULT_PORT}; a full URL keeps its scheme, with the scheme's own default port.
 * A listen-all address (`0.0.0.0`, `::`) becomes loopback, since a client cannot connect to it.
 * A trailing slash is removed; a path prefix (reverse proxy) is kept.
 *
 * @param value - the raw setting; empty or undefined gives {@link DEFAULT_HOST}.
 * @returns a base URL such as `http://127.0.0.1:11435`.
 * @throws TypeError when the value is not a usable address.
 */
export function resolveHost(value: string | undefined): string {
  const raw = (value ?? "").trim();
  if (raw === "") return DEFAULT_HOST;
  if (/^:?\d+$/.test(raw)) return `http://127.0.0.1:${raw.replace(":", "")}`;
  const hasScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(raw);
  let url: URL;
  try {
    url = new URL(hasScheme ? raw : `http://${raw}`);
  } catch {
    throw new TypeError(`invalid llmos host: ${JSON.stringify(value)}`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new TypeError(`invalid llmos host scheme: ${url.protocol}`);
  }
  if (!hasScheme && url.port === "") url.port = String(DEFAULT_PORT);
  if (url.hostname === "0.0.0.0") url.hostname = "127.0.0.1";
  if (url.hostname === "[::]") url.hostname = "[::1]";
  return url.toString().replace(/\/+$/, "");
}
