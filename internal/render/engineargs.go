package render

import (
	"strconv"

	v1alpha1 "github.com/qwenops/qwen-operator/api/v1alpha1"
)

// engineCommand returns the container command (nil: the image's entrypoint) and arguments
// that serve model with the engine of spec, listening on port and sharding over gpus.
// The user's spec.engine.args are appended last so they can add or override flags (both
// engines take the last value of a repeated flag).
func engineCommand(e v1alpha1.EngineSpec, model v1alpha1.ModelSpec, port int32, gpus int32) (command, args []string) {
	served := ServedName(model)
	p := strconv.Itoa(int(port))
	switch engineType(e) {
	case v1alpha1.EngineSGLang:
		command = []string{"python3", "-m", "sglang.launch_server"}
		args = []string{"--model-path", model.Name, "--served-model-name", served, "--host", "0.0.0.0", "--port", p}
		args = appendIf(args, model.Revision != "", "--revision", model.Revision)
		if model.MaxModelLen != nil {
			args = append(args, "--context-length", strconv.Itoa(int(*model.MaxModelLen)))
		}
		args = appendIf(args, e.GPUMemoryUtilization != "", "--mem-fraction-static", string(e.GPUMemoryUtilization))
		args = appendIf(args, gpus > 1, "--tp", strconv.Itoa(int(gpus)))
		args = appendIf(args, reasoningOn(model), "--reasoning-parser", reasoningParser(model))
		// SGLang parses tool calls whenever a parser is named; qwen25 is Qwen2.5's and Qwen3's.
		args = appendIf(args, toolsOn(model), "--tool-call-parser", toolParser(model, "qwen25"))
		args = append(args, "--enable-metrics")
	case v1alpha1.EngineSimulator:
		// The dummy tokenizer keeps the simulator off the model hub.
		args = []string{"--model", served, "--port", p, "--force-dummy-tokenizer"}
		if model.MaxModelLen != nil {
			args = append(args, "--max-model-len", strconv.Itoa(int(*model.MaxModelLen)))
		}
	default: // VLLM: the image's entrypoint is the OpenAI server.
		args = []string{"--model", model.Name, "--served-model-name", served, "--port", p}
		args = appendIf(args, model.Revision != "", "--revision", model.Revision)
		if model.MaxModelLen != nil {
			args = append(args, "--max-model-len", strconv.Itoa(int(*model.MaxModelLen)))
		}
		args = appendIf(args, e.GPUMemoryUtilization != "", "--gpu-memory-utilization", string(e.GPUMemoryUtilization))
		args = appendIf(args, gpus > 1, "--tensor-parallel-size", strconv.Itoa(int(gpus)))
		args = appendIf(args, reasoningOn(model), "--reasoning-parser", reasoningParser(model))
		// Without these vLLM refuses `tool_choice: "auto"`; Qwen3 writes Hermes-style tool calls.
		args = appendIf(args, toolsOn(model), "--enable-auto-tool-choice", "--tool-call-parser", toolParser(model, "hermes"))
	}
	return command, append(args, e.Args...)
}

func appendIf(args []string, cond bool, more ...string) []string {
	if cond {
		return append(args, more...)
	}
	return args
}

// engineType is the spec's engine type, VLLM when empty.
func engineType(e v1alpha1.EngineSpec) v1alpha1.EngineType {
	if e.Type == "" {
		return v1alpha1.EngineVLLM
	}
	return e.Type
}

// engineImage is the spec's image, else the default for the engine type.
func engineImage(e v1alpha1.EngineSpec, d Defaults) string {
	if e.Image != "" {
		return e.Image
	}
	switch engineType(e) {
	case v1alpha1.EngineSGLang:
		return d.SGLangImage
	case v1alpha1.EngineSimulator:
		return d.SimulatorImage
	default:
		return d.VLLMImage
	}
}

// enginePort is the spec's port, 8000 when unset.
func enginePort(e v1alpha1.EngineSpec) int32 {
	if e.Port == 0 {
		return 8000
	}
	return e.Port
}

func reasoningOn(m v1alpha1.ModelSpec) bool {
	return m.Reasoning.Enabled == nil || *m.Reasoning.Enabled
}

func reasoningParser(m v1alpha1.ModelSpec) string {
	if m.Reasoning.Parser == "" {
		return "qwen3"
	}
	return m.Reasoning.Parser
}

func toolsOn(m v1alpha1.ModelSpec) bool {
	return m.ToolCalling.Enabled == nil || *m.ToolCalling.Enabled
}

// toolParser is the spec's tool-call parser, else the engine's parser for Qwen3.
func toolParser(m v1alpha1.ModelSpec, qwen3 string) string {
	if m.ToolCalling.Parser == "" {
		return qwen3
	}
	return m.ToolCalling.Parser
}
