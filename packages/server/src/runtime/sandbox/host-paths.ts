import { existsSync, realpathSync } from "node:fs";
import path from "node:path";

/**
 * The real paths of those of `paths` that exist: a mount follows symlinks (such as /var/run -> /run), and a mount
 * point on the read-only root must exist.
 */
export function existingPaths(paths: string[]): string[] {
  return [...new Set(paths.filter((p) => existsSync(p)).map(realpathOr))];
}

/** `p` with its symlinks resolved, or as given (made absolute) when it cannot be. */
export function realpathOr(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    return path.resolve(p);
  }
}
