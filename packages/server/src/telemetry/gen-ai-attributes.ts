import {
  ATTR_GEN_AI_INPUT_MESSAGES,
  ATTR_GEN_AI_OPERATION_NAME,
  ATTR_GEN_AI_OUTPUT_MESSAGES,
  ATTR_GEN_AI_PROVIDER_NAME,
  ATTR_GEN_AI_REQUEST_MAX_TOKENS,
  ATTR_GEN_AI_REQUEST_MODEL,
  ATTR_GEN_AI_REQUEST_SEED,
  ATTR_GEN_AI_REQUEST_TEMPERATURE,
  ATTR_GEN_AI_REQUEST_TOP_P,
  ATTR_GEN_AI_RESPONSE_FINISH_REASONS,
  ATTR_GEN_AI_RESPONSE_ID,
  ATTR_GEN_AI_RESPONSE_MODEL,
  ATTR_GEN_AI_USAGE_INPUT_TOKENS,
  ATTR_GEN_AI_USAGE_OUTPUT_TOKENS,
} from "@opentelemetry/semantic-conventions/incubating";

/**
 * The GenAI semantic conventions' attribute names llmos writes. They are still "development" status upstream,
 * so they come from the package's incubating entry (pinned exactly) and are gathered here: a rename upstream
 * is a change in this one file.
 */
export const GEN_AI = {
  operationName: ATTR_GEN_AI_OPERATION_NAME,
  providerName: ATTR_GEN_AI_PROVIDER_NAME,
  requestModel: ATTR_GEN_AI_REQUEST_MODEL,
  requestMaxTokens: ATTR_GEN_AI_REQUEST_MAX_TOKENS,
  requestTemperature: ATTR_GEN_AI_REQUEST_TEMPERATURE,
  requestTopP: ATTR_GEN_AI_REQUEST_TOP_P,
  requestSeed: ATTR_GEN_AI_REQUEST_SEED,
  responseId: ATTR_GEN_AI_RESPONSE_ID,
  responseModel: ATTR_GEN_AI_RESPONSE_MODEL,
  responseFinishReasons: ATTR_GEN_AI_RESPONSE_FINISH_REASONS,
  usageInputTokens: ATTR_GEN_AI_USAGE_INPUT_TOKENS,
  usageOutputTokens: ATTR_GEN_AI_USAGE_OUTPUT_TOKENS,
  inputMessages: ATTR_GEN_AI_INPUT_MESSAGES,
  outputMessages: ATTR_GEN_AI_OUTPUT_MESSAGES,
} as const;
