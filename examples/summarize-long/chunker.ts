/** Splits text into pieces that each fit a token budget, measuring tokens with the model's own tokenizer. */
export type CountTokens = (text: string) => Promise<number>;

/** Paragraphs (or, for a paragraph over the budget, its sentences) packed greedily into chunks of <= budget tokens. */
export async function splitToBudget(text: string, budget: number, count: CountTokens): Promise<string[]> {
  const units: string[] = [];
  for (const paragraph of text
    .split(/\n\s*\n/)
    .map((p) => p.trim())
    .filter(Boolean)) {
    if ((await count(paragraph)) <= budget) units.push(paragraph);
    else units.push(...(paragraph.match(/[^.!?]+[.!?]*\s*/g) ?? [paragraph]).map((s) => s.trim()));
  }
  const chunks: string[] = [];
  let current = "";
  for (const unit of units) {
    const candidate = current ? `${current}\n\n${unit}` : unit;
    if ((await count(candidate)) <= budget) current = candidate;
    else {
      if (current) chunks.push(current);
      if ((await count(unit)) > budget) throw new Error(`a sentence alone is longer than ${budget} tokens`);
      current = unit;
    }
  }
  if (current) chunks.push(current);
  return chunks;
}
