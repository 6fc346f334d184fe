/** The glossary and the JSON schema of a translation that must use it. */
export interface Glossary {
  source: string;
  target: string;
  terms: Record<string, string>;
}

/** Glossary entries whose source term occurs in `text` (case-insensitive, whole words), in glossary order. */
export function termsIn(text: string, glossary: Glossary): Array<{ source: string; target: string }> {
  return Object.entries(glossary.terms)
    .filter(([source]) => new RegExp(`\\b${source.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}\\b`, "i").test(text))
    .map(([source, target]) => ({ source, target }));
}

/**
 * The output schema: the translation, and the glossary terms it had to use, fixed by the schema itself (one
 * `const` pair per term found in the source, as `prefixItems`), so the model cannot invent or drop a term.
 */
export function translationSchema(glossary: Glossary, terms: Array<{ source: string; target: string }>) {
  return {
    type: "object",
    properties: {
      language: { const: glossary.target },
      translation: { type: "string", minLength: 1, maxLength: 400 },
      terms: {
        type: "array",
        prefixItems: terms.map((t) => ({
          type: "object",
          properties: { source: { const: t.source }, target: { const: t.target } },
          required: ["source", "target"],
          additionalProperties: false,
        })),
        items: false,
      },
    },
    required: ["language", "translation", "terms"],
    additionalProperties: false,
  };
}
