package gateway

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// apiError is an error reply in the OpenAI shape:
// {"error":{"message":...,"type":...,"param":...,"code":...}}.
type apiError struct {
	status  int
	message string
	typ     string
	param   string // empty: null
	code    string // empty: null
}

func (e *apiError) Error() string { return e.message }

func invalidRequest(status int, msg, param, code string) *apiError {
	return &apiError{status: status, message: msg, typ: "invalid_request_error", param: param, code: code}
}

// MarshalJSON renders the OpenAI error envelope.
func (e *apiError) MarshalJSON() ([]byte, error) {
	type body struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    *string `json:"code"`
	}
	b := body{Message: e.message, Type: e.typ}
	if e.param != "" {
		b.Param = &e.param
	}
	if e.code != "" {
		b.Code = &e.code
	}
	return json.Marshal(struct {
		Error body `json:"error"`
	}{b})
}

func writeError(w http.ResponseWriter, e *apiError) {
	b, _ := json.Marshal(e)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(e.status)
	w.Write(append(b, '\n'))
}
