import type { EvalRequest, ImatrixRequest, JobView } from "@llmos/protocol";
import { readNdjson } from "./lines.js";
import type { Transport } from "./transport.js";
import type { RequestOptions } from "./types.js";

/** Whether a job will not change any more. */
export function jobFinished(view: JobView): boolean {
  return view.state === "succeeded" || view.state === "failed" || view.state === "cancelled";
}

/**
 * Long model jobs (`/api/jobs`): quality evaluation and importance matrices. Reach it as `client.jobs`.
 * @example
 * ```ts
 * const job = await client.jobs.eval({ model: "stories-q4", base: "stories", text });
 * const done = await client.jobs.wait(job.id, (v) => console.log(v.progress));
 * console.log(done.result);
 * ```
 */
export class JobsApi {
  readonly #transport: Transport;

  /** @internal Created by `Client`. */
  constructor(transport: Transport) {
    this.#transport = transport;
  }

  /** Starts an eval job: perplexity over the text, and with `base` the KL divergence against it. */
  eval(request: EvalRequest, opts: RequestOptions = {}): Promise<JobView> {
    return this.#transport.json<JobView>({ method: "POST", path: "/api/jobs/eval", body: request, ...opts });
  }

  /** Starts an imatrix job; its result names the blob (`digest`) a quantize can use. */
  imatrix(request: ImatrixRequest, opts: RequestOptions = {}): Promise<JobView> {
    return this.#transport.json<JobView>({ method: "POST", path: "/api/jobs/imatrix", body: request, ...opts });
  }

  /** A job's state, progress and result. */
  get(id: string, opts: RequestOptions = {}): Promise<JobView> {
    return this.#transport.json<JobView>({ method: "GET", path: `/api/jobs/${encodeURIComponent(id)}`, ...opts });
  }

  /** Jobs kept by the daemon (finished ones for an hour), newest first. */
  async list(opts: RequestOptions = {}): Promise<JobView[]> {
    return (await this.#transport.json<{ jobs: JobView[] }>({ method: "GET", path: "/api/jobs", ...opts })).jobs;
  }

  /** Cancels a queued or running job (its worker process is killed). */
  cancel(id: string, opts: RequestOptions = {}): Promise<JobView> {
    return this.#transport.json<JobView>({ method: "DELETE", path: `/api/jobs/${encodeURIComponent(id)}`, ...opts });
  }

  /** The job's view at every change, ending with the finished one. */
  async *events(id: string, opts: RequestOptions = {}): AsyncGenerator<JobView> {
    const open = await this.#transport.open({
      method: "GET",
      path: `/api/jobs/${encodeURIComponent(id)}/events`,
      ...opts,
    });
    open.stopTimer();
    yield* readNdjson<JobView>(open);
  }

  /** Waits until the job is finished (calling `onView` with each change) and returns its last view. */
  async wait(id: string, onView?: (view: JobView) => void, opts: RequestOptions = {}): Promise<JobView> {
    let last: JobView | undefined;
    for await (const view of this.events(id, opts)) {
      last = view;
      onView?.(view);
      if (jobFinished(view)) return view;
    }
    return last ?? this.get(id, opts);
  }

  /** The file a finished imatrix job made (an importance matrix in llama.cpp's GGUF format). */
  async output(id: string, opts: RequestOptions = {}): Promise<Uint8Array> {
    const open = await this.#transport.open({
      method: "GET",
      path: `/api/jobs/${encodeURIComponent(id)}/output`,
      ...opts,
    });
    try {
      return new Uint8Array(await open.response.arrayBuffer());
    } catch (error) {
      throw open.mapReadError(error);
    } finally {
      open.close();
    }
  }
}
