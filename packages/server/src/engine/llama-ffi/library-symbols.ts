/** Symbols of a loaded shared library that no registry hands out, found through the address of one that is. */
import koffi, { type LibraryHandle } from "koffi";

const DlInfo = koffi.struct("Dl_info", {
  dli_fname: "const char *",
  dli_fbase: "void *",
  dli_sname: "const char *",
  dli_saddr: "void *",
});

/**
 * Bind `decl` from the shared library that holds the code at `address`. The CPU backend is a variant library
 * chosen at run time (zen4, haswell, ...) and only some of its functions are reachable through the backend
 * registry; `dladdr` names the file, and loading it again returns the handle the process already has.
 */
export function bindFromLibraryOf<T>(libc: LibraryHandle, address: bigint, decl: string): T | null {
  const file = libraryPathOf(libc, address);
  if (!file) return null;
  try {
    return koffi.load(file).func(decl) as T;
  } catch {
    return null;
  }
}

/** Path of the shared library that holds the code at `address` (`dladdr`), or null. */
export function libraryPathOf(libc: LibraryHandle, address: bigint): string | null {
  try {
    const dladdr = libc.func("dladdr", "int", ["void *", koffi.out(koffi.pointer(DlInfo))]) as (
      addr: bigint,
      info: Record<string, unknown>,
    ) => number;
    const info: Record<string, unknown> = {};
    if (dladdr(address, info) === 0 || typeof info["dli_fname"] !== "string") return null;
    return info["dli_fname"];
  } catch {
    return null;
  }
}
