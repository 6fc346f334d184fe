/**
 * Types every koffi binding module shares: an opaque native pointer and a typed function with its async form. In
 * a module of their own so that binding modules can use them without importing each other.
 */

/** Opaque native pointer as koffi 3 returns it. */
export type Ptr = bigint;

/** A koffi function: called synchronously, or with `.async` on koffi's worker thread. */
export type FfiFunction<A extends unknown[], R> = ((...args: A) => R) & {
  async: (...args: [...A, (err: unknown, res: R) => void]) => void;
};
