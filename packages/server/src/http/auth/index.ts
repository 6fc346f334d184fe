export { authPlugin, routeScopeOf, type AuthPluginOptions } from "./auth-plugin.js";
export { ROUTE_SCOPES, type LlmosAuth, type RouteScope } from "./route-scope.js";
export { presentedCredential, peerAddress, isProxied, type PresentedCredential } from "./credentials.js";
export { modelsOfRequest } from "./request-models.js";
export { callerMaySee } from "./model-visibility.js";
export { estimateRequestTokens } from "./token-estimate.js";
export { formatResetDuration, setRateLimitHeaders, setRetryAfter } from "./rate-limit-headers.js";
export { REDACT_PATHS } from "../../security/redact.js";
