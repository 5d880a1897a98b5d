// Command shimless-traces receives containerd's traces over OTLP/HTTP on
// loopback and prints each batch of spans as trees, for looking at what a
// pod's start or stop did (CRI → sandbox controller → runsc) without a
// collector. Start containerd with
//
//	OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf
//
// (see docs/observability.md).
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"sync"

	"github.com/shimless/shimless/telemetry/spantree"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:4318", "address to listen on (OTLP/HTTP)")
	flag.Parse()
	var mu sync.Mutex
	recv := &spantree.Receiver{OnSpans: func(spans []spantree.Span) {
		mu.Lock()
		defer mu.Unlock()
		spantree.Render(os.Stdout, spantree.Build(spans))
	}}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Fprintf(os.Stderr, "shimless-traces: receiving OTLP/HTTP traces on http://%s\n", ln.Addr())
	log.Fatal(http.Serve(ln, recv))
}
