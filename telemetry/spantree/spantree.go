// Package spantree is a minimal OTLP/HTTP trace receiver: it accepts what
// containerd's OTLP exporter sends (POST /v1/traces, protobuf) and renders
// the spans as trees. cmd/shimless-traces and the integration tests use it;
// it is meant for looking at traces on one machine, not as a collector.
package spantree

import (
	"compress/gzip"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	"google.golang.org/protobuf/proto"
)

// Span is one received span.
type Span struct {
	TraceID, SpanID, ParentID string
	Name                      string
	Service                   string
	Start, End                time.Time
	Attributes                map[string]string
	Error                     string
}

// Duration is how long the span took.
func (s Span) Duration() time.Duration { return s.End.Sub(s.Start) }

// Receiver collects spans posted to it. Its zero value is ready; OnSpans,
// when set, is called with every batch received.
type Receiver struct {
	OnSpans func([]Span)

	mu    sync.Mutex
	spans []Span
}

// Spans returns every span received so far.
func (r *Receiver) Spans() []Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Span(nil), r.spans...)
}

// ServeHTTP implements OTLP/HTTP's trace export (binary protobuf).
func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost || req.URL.Path != "/v1/traces" {
		http.NotFound(w, req)
		return
	}
	if ct := req.Header.Get("Content-Type"); ct != "application/x-protobuf" {
		http.Error(w, "only application/x-protobuf is supported (OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf)", http.StatusUnsupportedMediaType)
		return
	}
	var body io.Reader = req.Body
	if req.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(req.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		defer zr.Close()
		body = zr
	}
	data, err := io.ReadAll(io.LimitReader(body, 64<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var msg coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(data, &msg); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	spans := Decode(&msg)
	r.mu.Lock()
	r.spans = append(r.spans, spans...)
	r.mu.Unlock()
	if r.OnSpans != nil {
		r.OnSpans(spans)
	}
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

// Decode flattens an export request into spans.
func Decode(msg *coltracepb.ExportTraceServiceRequest) []Span {
	var out []Span
	for _, rs := range msg.GetResourceSpans() {
		service := attrs(rs.GetResource().GetAttributes())["service.name"]
		for _, ss := range rs.GetScopeSpans() {
			for _, sp := range ss.GetSpans() {
				s := Span{
					TraceID:    hex.EncodeToString(sp.GetTraceId()),
					SpanID:     hex.EncodeToString(sp.GetSpanId()),
					ParentID:   hex.EncodeToString(sp.GetParentSpanId()),
					Name:       sp.GetName(),
					Service:    service,
					Start:      time.Unix(0, int64(sp.GetStartTimeUnixNano())),
					End:        time.Unix(0, int64(sp.GetEndTimeUnixNano())),
					Attributes: attrs(sp.GetAttributes()),
				}
				if sp.GetStatus().GetCode() == 2 { // STATUS_CODE_ERROR
					s.Error = sp.GetStatus().GetMessage()
				}
				out = append(out, s)
			}
		}
	}
	return out
}

func attrs(kvs []*commonpb.KeyValue) map[string]string {
	m := map[string]string{}
	for _, kv := range kvs {
		v := kv.GetValue()
		switch {
		case v.GetStringValue() != "":
			m[kv.GetKey()] = v.GetStringValue()
		default:
			m[kv.GetKey()] = strings.Trim(fmt.Sprint(v.GetValue()), "&{}")
		}
	}
	return m
}

// Tree is a span with its children, ordered by start time.
type Tree struct {
	Span
	Children []*Tree
}

// Build arranges spans into trees: one per span whose parent was not
// received (a trace's root, or a span whose parent is still open).
func Build(spans []Span) []*Tree {
	nodes := map[string]*Tree{}
	for _, s := range spans {
		nodes[s.TraceID+"/"+s.SpanID] = &Tree{Span: s}
	}
	var roots []*Tree
	for _, s := range spans {
		n := nodes[s.TraceID+"/"+s.SpanID]
		if p, ok := nodes[s.TraceID+"/"+s.ParentID]; ok && s.ParentID != "" {
			p.Children = append(p.Children, n)
		} else {
			roots = append(roots, n)
		}
	}
	var sortTrees func([]*Tree)
	sortTrees = func(ts []*Tree) {
		sort.SliceStable(ts, func(i, j int) bool { return ts[i].Start.Before(ts[j].Start) })
		for _, t := range ts {
			sortTrees(t.Children)
		}
	}
	sortTrees(roots)
	return roots
}

// Find returns the first span (depth first) named name.
func Find(trees []*Tree, name string) *Tree {
	for _, t := range trees {
		if t.Name == name {
			return t
		}
		if f := Find(t.Children, name); f != nil {
			return f
		}
	}
	return nil
}

// Render writes trees as indented lines: name, duration, attributes, error.
func Render(w io.Writer, trees []*Tree) {
	var walk func(t *Tree, depth int)
	walk = func(t *Tree, depth int) {
		keys := make([]string, 0, len(t.Attributes))
		for k := range t.Attributes {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var b strings.Builder
		for _, k := range keys {
			fmt.Fprintf(&b, " %s=%s", k, t.Attributes[k])
		}
		line := fmt.Sprintf("%s%s %s%s", strings.Repeat("  ", depth), t.Name, t.Duration().Round(time.Microsecond), b.String())
		if t.Error != "" {
			line += " ERROR: " + t.Error
		}
		fmt.Fprintln(w, line)
		for _, c := range t.Children {
			walk(c, depth+1)
		}
	}
	for _, t := range trees {
		fmt.Fprintf(w, "trace %s\n", t.TraceID)
		walk(t, 1)
	}
}
