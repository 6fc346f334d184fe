/** Tokenizer and detokenizer over a loaded model's vocabulary. */
import type { LlamaApi, Ptr } from "./bindings.js";

export class VocabText {
  /** Bytes of each token's piece, cached: detokenizing a generated token is then one Map lookup. */
  private readonly pieces = new Map<number, Buffer>();
  private scratch = Buffer.alloc(256);

  constructor(
    private readonly llama: LlamaApi,
    private readonly vocab: Ptr,
    readonly nTokens: number,
  ) {}

  /** Tokenize UTF-8 text. `addSpecial` adds BOS (and EOS) when the vocabulary asks for them. */
  tokenize(text: string, addSpecial: boolean, parseSpecial: boolean): number[] {
    const bytes = Buffer.from(text, "utf8");
    const input = bytes.length > 0 ? bytes : Buffer.alloc(1);
    let out = new Int32Array(bytes.length + 8);
    let n = this.llama.llama_tokenize(this.vocab, input, bytes.length, out, out.length, addSpecial, parseSpecial);
    if (n < 0) {
      if (n === -2147483648) throw new RangeError("tokenization result too large");
      out = new Int32Array(-n);
      n = this.llama.llama_tokenize(this.vocab, input, bytes.length, out, out.length, addSpecial, parseSpecial);
      if (n < 0) throw new Error(`llama_tokenize failed (${n})`);
    }
    return Array.from(out.subarray(0, n));
  }

  /** Text of a token sequence (special tokens not rendered). */
  detokenize(tokens: readonly number[]): string {
    if (tokens.length === 0) return "";
    const input = Int32Array.from(tokens);
    let buf = Buffer.alloc(Math.max(64, tokens.length * 8));
    let n = this.llama.llama_detokenize(this.vocab, input, input.length, buf, buf.length, false, false);
    if (n < 0) {
      buf = Buffer.alloc(-n);
      n = this.llama.llama_detokenize(this.vocab, input, input.length, buf, buf.length, false, false);
      if (n < 0) throw new Error(`llama_detokenize failed (${n})`);
    }
    return buf.toString("utf8", 0, n);
  }

  /** Raw bytes of one token's piece; may be an incomplete UTF-8 sequence (byte-fallback tokens). */
  pieceBytes(token: number): Buffer {
    const cached = this.pieces.get(token);
    if (cached) return cached;
    const piece = this.renderPiece(token, false);
    this.pieces.set(token, piece);
    return piece;
  }

  /** Text of a (possibly special) token, rendered as the model writes it, e.g. "<s>". */
  specialText(token: number | null): string {
    if (token === null) return "";
    return this.renderPiece(token, true).toString("utf8");
  }

  private renderPiece(token: number, special: boolean): Buffer {
    let n = this.llama.llama_token_to_piece(this.vocab, token, this.scratch, this.scratch.length, 0, special);
    if (n < 0) {
      this.scratch = Buffer.alloc(-n);
      n = this.llama.llama_token_to_piece(this.vocab, token, this.scratch, this.scratch.length, 0, special);
      if (n < 0) throw new Error(`llama_token_to_piece failed for token ${token}`);
    }
    return Buffer.from(this.scratch.subarray(0, n));
  }
}
