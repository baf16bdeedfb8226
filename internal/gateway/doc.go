// Package gateway is the OpenAI-compatible data plane in front of the inference engines.
//
// A completion request goes through, in order: authentication (bearer API keys, compared in
// constant time), the body size limit, parsing and validation, the client key, the rate
// limits (requests, tokens, concurrency; local or Redis), the degradation rewrite of the
// current level (L1 no upstream streaming, L2 thinking off, L3 fallback model, L4 static
// reply), the per-upstream circuit breaker, and the proxy, which passes SSE streams through
// chunk by chunk. Token limits are charged with an estimate before the request and trued up
// from the response's usage afterwards.
//
// The configuration (internal/gatewayconfig) can be swapped at any time with Apply; limiter
// and breaker state survive a swap that does not change them.
package gateway
