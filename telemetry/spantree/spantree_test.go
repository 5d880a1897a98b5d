package spantree

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

func span(id, parent byte, name string, start, end uint64) *tracepb.Span {
	var p []byte
	if parent != 0 {
		p = []byte{0, 0, 0, 0, 0, 0, 0, parent}
	}
	return &tracepb.Span{
		TraceId: bytes.Repeat([]byte{1}, 16), SpanId: []byte{0, 0, 0, 0, 0, 0, 0, id}, ParentSpanId: p,
		Name: name, StartTimeUnixNano: start * 1000, EndTimeUnixNano: end * 1000,
		Attributes: []*commonpb.KeyValue{{Key: "sandbox.id", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: "p1"}}}},
	}
}

func TestReceiveAndRender(t *testing.T) {
	req := &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{
		ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{
			span(3, 2, "runsc.start", 300, 400),
			span(2, 1, "runsc.create", 100, 250), // started first: listed first
			span(4, 1, "runsc.state", 450, 460),
			span(1, 0, "shimless.sandbox.start", 0, 1000),
		}}},
	}}}
	body, err := proto.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	var r Receiver
	srv := httptest.NewServer(&r)
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/v1/traces", "application/x-protobuf", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	trees := Build(r.Spans())
	if len(trees) != 1 {
		t.Fatalf("%d roots, want 1", len(trees))
	}
	start := Find(trees, "shimless.sandbox.start")
	if start == nil || len(start.Children) != 2 || start.Children[0].Name != "runsc.create" || start.Children[0].Children[0].Name != "runsc.start" {
		t.Fatalf("unexpected tree: %+v", start)
	}
	var out strings.Builder
	Render(&out, trees)
	want := "trace 01010101010101010101010101010101\n  shimless.sandbox.start 1ms sandbox.id=p1\n    runsc.create 150µs sandbox.id=p1\n      runsc.start 100µs sandbox.id=p1\n    runsc.state 10µs sandbox.id=p1\n"
	if out.String() != want {
		t.Errorf("render:\n%s\nwant:\n%s", out.String(), want)
	}
}
