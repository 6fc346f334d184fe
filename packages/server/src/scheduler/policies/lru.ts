import { lruVictims, type SchedulingPolicy, type VictimRequest } from "../policy.js";
import type { ModelView } from "../snapshot.js";

/**
 * `lru`: loaded models are a cache. An idle model stays until its memory is needed (the configured keep-alive does
 * not apply; a keep_alive a request gives still does), then the least recently used idle models go.
 */
export class LruPolicy implements SchedulingPolicy {
  readonly name: string = "lru";

  chooseVictims(candidates: readonly ModelView[], request: VictimRequest): string[] | undefined {
    return lruVictims(candidates, request.neededBytes);
  }

  expiresAt(): number | null {
    return null;
  }

  preload(): string[] {
    return [];
  }

  explain(): string {
    return "kept until its memory is needed (least recently used goes first)";
  }
}
