// Package controllers holds the reconcilers of qwen-operator. Each one fetches its object,
// calls a pure function (internal/render for the QwenService), applies the result with
// server-side apply under one field manager, and writes status once.
package controllers
