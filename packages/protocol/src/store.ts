/** Wire types of store maintenance (`/api/store/verify`, `/api/store/usage`). */

/** Every blob re-hashed; corrupt ones are moved aside and the models using them named. */
export interface VerifyReport {
  /** Blobs checked. */
  checked: number;
  corrupt: Array<{ digest: string; quarantinedTo: string; models: string[] }>;
}

/** Disk use of the store. */
export interface DiskUsage {
  /** All bytes the store manages (blobs + partial downloads). */
  totalBytes: number;
  blobBytes: number;
  partialBytes: number;
  /** Bytes of blobs that more than one model references (counted once). */
  sharedBytes: number;
  /** Bytes of blobs no model references (gc would free them unless held). */
  unreferencedBytes: number;
  models: Array<{ name: string; bytes: number; uniqueBytes: number; sharedBytes: number }>;
}
