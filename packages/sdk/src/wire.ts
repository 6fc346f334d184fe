/** OpenAI-compatible wire shapes the SDK sends and reads (internal). */

export interface WireUsage {
  prompt_tokens?: number;
  completion_tokens?: number;
  total_tokens?: number;
}

export interface WireToolCall {
  index?: number;
  id?: string;
  type?: "function";
  function?: { name?: string; arguments?: string };
}

export interface WireMessage {
  role: string;
  content: string | null;
  tool_calls?: WireToolCall[];
  tool_call_id?: string;
  name?: string;
}

export interface CompletionResponse {
  id?: string;
  choices: Array<{ text?: string; finish_reason?: string | null; index?: number }>;
  usage?: WireUsage;
}

export interface ChatCompletionResponse {
  id?: string;
  choices: Array<{
    message?: WireMessage;
    delta?: Partial<WireMessage>;
    finish_reason?: string | null;
    index?: number;
  }>;
  usage?: WireUsage | null;
}

export interface EmbeddingResponse {
  data: Array<{ embedding: number[]; index: number }>;
  usage?: WireUsage;
}
