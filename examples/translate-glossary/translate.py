"""Translation with a glossary and JSON-schema output, on the stdlib Python client (the same program as main.ts).

    PYTHONPATH=clients/python python3 examples/translate-glossary/translate.py "The kettle has a warranty." [--json]
"""
import argparse
import json
import os
import re

import llmos


def terms_in(text, glossary):
    """Glossary entries whose source term occurs in the text (case-insensitive, whole words), in glossary order."""
    return [
        {"source": s, "target": t}
        for s, t in glossary["terms"].items()
        if re.search(r"\b" + re.escape(s) + r"\b", text, re.IGNORECASE)
    ]


def translation_schema(glossary, terms):
    """The translation, and the glossary terms fixed by the schema itself (one const pair per term found)."""
    pair = lambda t: {
        "type": "object",
        "properties": {"source": {"const": t["source"]}, "target": {"const": t["target"]}},
        "required": ["source", "target"],
        "additionalProperties": False,
    }
    return {
        "type": "object",
        "properties": {
            "language": {"const": glossary["target"]},
            "translation": {"type": "string", "minLength": 1, "maxLength": 400},
            "terms": {"type": "array", "prefixItems": [pair(t) for t in terms], "items": False},
        },
        "required": ["language", "translation", "terms"],
        "additionalProperties": False,
    }


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser()
    parser.add_argument("text", nargs="*")
    parser.add_argument("--glossary", default=os.path.join(here, "glossary.json"))
    parser.add_argument("--model", default="stories")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    text = " ".join(args.text) or "Descaling keeps the kettle under warranty."
    with open(args.glossary, encoding="utf-8") as f:
        glossary = json.load(f)
    terms = terms_in(text, glossary)
    schema = translation_schema(glossary, terms)
    model = llmos.Client().model(args.model)
    rule = "; ".join(f"{t['source']} = {t['target']}" for t in terms)
    messages = [
        {"role": "system", "content": f"Translate from {glossary['source']} to {glossary['target']}. Use these terms: {rule}."},
        {"role": "user", "content": text},
    ]
    result = model.generate_object(messages, schema, name="translation", max_tokens=300, temperature=0.7, seed=args.seed)
    missing = [t["target"] for t in result["terms"] if t["target"].lower() not in result["translation"].lower()]
    report = dict(text=text, **result, termsMissingFromTranslation=missing, schema=schema)
    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        print(f"{glossary['source']}: {text}\n{glossary['target']}: {result['translation']}")
        for t in result["terms"]:
            print(f"  {t['source']} -> {t['target']}{'  (missing!)' if t['target'] in missing else ''}")


if __name__ == "__main__":
    main()
