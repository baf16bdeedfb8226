package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/shared"

	"github.com/qwenops/qwen-operator/internal/testutil/simulator"
)

// toolParams is a chat request with two tools and tool_choice "auto", the shape LangChain's
// bind_tools sends.
func toolParams() openai.ChatCompletionNewParams {
	p := chatParams("Qwen3-1.7B", "What's the weather in Hangzhou, and the time there?")
	p.Tools = []openai.ChatCompletionToolUnionParam{
		openai.ChatCompletionFunctionTool(shared.FunctionDefinitionParam{
			Name: "get_weather", Description: openai.String("Current weather of a city."),
			Parameters: shared.FunctionParameters{"type": "object", "properties": map[string]any{"city": map[string]any{"type": "string"}}, "required": []string{"city"}},
		}),
		openai.ChatCompletionFunctionTool(shared.FunctionDefinitionParam{
			Name:       "get_time",
			Parameters: shared.FunctionParameters{"type": "object", "properties": map[string]any{"tz": map[string]any{"type": "string"}}, "required": []string{"tz"}},
		}),
	}
	p.ToolChoice = openai.ChatCompletionToolChoiceOptionUnionParam{OfAuto: openai.String("auto")}
	return p
}

// checkToolCalls checks calls are function calls of the two tools, each with an id and JSON
// object arguments holding its required parameter.
func checkToolCalls(t *testing.T, calls []openai.ChatCompletionMessageToolCallUnion) {
	t.Helper()
	required := map[string]string{"get_weather": "city", "get_time": "tz"}
	for i, c := range calls {
		var args map[string]any
		if c.ID == "" || c.Type != "function" || required[c.Function.Name] == "" ||
			json.Unmarshal([]byte(c.Function.Arguments), &args) != nil || args[required[c.Function.Name]] == nil {
			t.Fatalf("tool call %d: %+v", i, c)
		}
	}
}

// untilToolCalls repeats a request until the engine answers with tool calls: with
// tool_choice "auto" the simulator picks between zero and all the tools at random.
func untilToolCalls(t *testing.T, do func() ([]openai.ChatCompletionMessageToolCallUnion, string)) ([]openai.ChatCompletionMessageToolCallUnion, string) {
	t.Helper()
	for range 40 {
		if calls, finish := do(); len(calls) > 0 {
			return calls, finish
		}
	}
	t.Fatal("no tool calls in 40 answers")
	return nil, ""
}

// TestToolCallingThroughGateway sends tools with tool_choice "auto" through the gateway to a
// real simulator with the OpenAI SDK: the engine gets the tools as sent, and the client gets
// tool_calls it can use, whole in a JSON answer and as delta.tool_calls in a stream; at L1
// (the engine called without streaming) the stream the gateway makes of the whole answer
// carries exactly the engine's calls, each with its index (LangChain merges stream chunks by
// it).
func TestToolCallingThroughGateway(t *testing.T) {
	engine := newTap(t, simulator.Start(t, simulator.Options{Model: "Qwen3-1.7B", Mode: "echo"}))
	config := func(level int) string {
		return fmt.Sprintf("upstream: {url: %q, model: Qwen3-1.7B}\ndegradation: {level: %d}\n", engine.srv.URL, level)
	}
	tg := startGateway(t, nil, config(0))
	client := sdkClient(tg.srv.URL)
	ctx := context.Background()

	nonStreaming := func() ([]openai.ChatCompletionMessageToolCallUnion, string) {
		c, err := client.Chat.Completions.New(ctx, toolParams())
		if err != nil {
			t.Fatal(err)
		}
		return c.Choices[0].Message.ToolCalls, string(c.Choices[0].FinishReason)
	}
	streaming := func(chunks *int) func() ([]openai.ChatCompletionMessageToolCallUnion, string) {
		return func() ([]openai.ChatCompletionMessageToolCallUnion, string) {
			s := client.Chat.Completions.NewStreaming(ctx, toolParams())
			var acc openai.ChatCompletionAccumulator
			*chunks = 0
			for s.Next() {
				acc.AddChunk(s.Current())
				for _, ch := range s.Current().Choices {
					if len(ch.Delta.ToolCalls) > 0 {
						*chunks++
					}
				}
			}
			if err := s.Err(); err != nil {
				t.Fatal(err)
			}
			return acc.Choices[0].Message.ToolCalls, string(acc.Choices[0].FinishReason)
		}
	}

	t.Run("non-streaming", func(t *testing.T) {
		calls, finish := untilToolCalls(t, nonStreaming)
		checkToolCalls(t, calls)
		if finish != "tool_calls" {
			t.Errorf("finish_reason %q", finish)
		}
		b := engine.last()
		if tc, _ := b["tool_choice"].(string); tc != "auto" || len(b["tools"].([]any)) != 2 {
			t.Errorf("the engine got tool_choice %v tools %v", b["tool_choice"], b["tools"])
		}
	})
	t.Run("streaming", func(t *testing.T) {
		var chunks int
		calls, _ := untilToolCalls(t, streaming(&chunks))
		checkToolCalls(t, calls)
		if chunks < 2*len(calls) { // the simulator streams arguments piece by piece
			t.Errorf("%d tool-call chunks for %d calls: not streamed through", chunks, len(calls))
		}
		if b := engine.last(); b["stream"] != true {
			t.Errorf("engine got stream %v", b["stream"])
		}
	})
	t.Run("L1 re-streams the engine's whole answer", func(t *testing.T) {
		if err := tg.Load([]byte(config(1))); err != nil {
			t.Fatal(err)
		}
		var chunks int
		calls, finish := untilToolCalls(t, streaming(&chunks))
		checkToolCalls(t, calls)
		if chunks != 1 || finish != "tool_calls" {
			t.Errorf("%d tool-call chunks, finish_reason %q; want every call in one chunk", chunks, finish)
		}
		// The engine's own answer, which the gateway turned into the stream.
		var answer struct {
			Choices []struct {
				Message struct {
					ToolCalls []openai.ChatCompletionMessageToolCallUnion `json:"tool_calls"`
				} `json:"message"`
			} `json:"choices"`
		}
		if err := json.Unmarshal(engine.lastResponse(), &answer); err != nil || len(answer.Choices) != 1 {
			t.Fatalf("engine answer %s: %v", engine.lastResponse(), err)
		}
		same := func(a, b openai.ChatCompletionMessageToolCallUnion) bool {
			return a.ID == b.ID && a.Type == b.Type && a.Function.Name == b.Function.Name && a.Function.Arguments == b.Function.Arguments
		}
		if want := answer.Choices[0].Message.ToolCalls; !slices.EqualFunc(calls, want, same) {
			t.Errorf("client got %+v\nengine answered %+v", calls, want)
		}
		if b := engine.last(); b["stream"] != false {
			t.Errorf("engine got stream %v at L1", b["stream"])
		}
	})
	t.Run("L1 stream events carry each call's index", func(t *testing.T) {
		for range 40 {
			resp := tg.post(t, "/v1/chat/completions", `{"model":"Qwen3-1.7B","stream":true,"messages":[{"role":"user","content":"weather?"}],`+
				`"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}},`+
				`{"type":"function","function":{"name":"get_time","parameters":{"type":"object","properties":{"tz":{"type":"string"}},"required":["tz"]}}}],"tool_choice":"auto"}`)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, readAll(t, resp))
			}
			data := sseData(readAll(t, resp))
			var chunk struct {
				Choices []struct {
					Delta struct {
						ToolCalls []map[string]any `json:"tool_calls"`
					} `json:"delta"`
				} `json:"choices"`
			}
			if len(data) < 2 || json.Unmarshal([]byte(data[0]), &chunk) != nil || len(chunk.Choices) != 1 {
				t.Fatalf("stream %q", data)
			}
			calls := chunk.Choices[0].Delta.ToolCalls
			if len(calls) < 2 {
				continue // one call or none: the index of a second one is not shown
			}
			for i, c := range calls {
				if c["index"] != float64(i) {
					t.Fatalf("call %d has index %v: %v", i, c["index"], calls)
				}
			}
			return
		}
		t.Fatal("no answer with two tool calls in 40")
	})
}
