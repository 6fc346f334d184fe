/**
 * What a start-up has opened so far, to be closed again if a later step fails: steps run in reverse order of
 * registration (the HTTP server before the scheduler before the database before the store), each one even when
 * an earlier one failed.
 */
export class CleanupStack {
  private readonly steps: Array<{ name: string; run: () => unknown }> = [];

  /** Registers how to close something just opened. */
  defer(name: string, run: () => unknown): void {
    this.steps.push({ name, run });
  }

  /** Runs every registered step, last first, once; `onError` hears about steps that threw. */
  async unwind(onError: (name: string, error: unknown) => void = () => undefined): Promise<void> {
    for (let step = this.steps.pop(); step; step = this.steps.pop()) {
      try {
        await step.run();
      } catch (error) {
        onError(step.name, error);
      }
    }
  }
}
