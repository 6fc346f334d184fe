/**
 * What a model reference in a Modelfile's FROM or ADAPTER line (or an API's `from`) names: a file or a model. One
 * rule, shared by the daemon (which imports files, under its import policy) and the CLI (which uploads local files
 * before it sends a Modelfile), so both read the same line the same way.
 */

/**
 * True when `ref` names a file rather than a model: an absolute path, one relative to the current folder (`./`,
 * `../`) or to the home folder (`~/`), or any name ending in `.gguf`. A POSIX rule, as llmos runs on Linux.
 */
export function looksLikePath(ref: string): boolean {
  return (
    ref.startsWith("/") ||
    ref.startsWith("./") ||
    ref.startsWith("../") ||
    ref.startsWith("~/") ||
    ref.toLowerCase().endsWith(".gguf")
  );
}
