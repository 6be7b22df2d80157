// stella-referrers-registry: go-containerregistry's in-memory registry (pkg/registry, the same
// code as its cmd/registry) with the OCI 1.1 referrers API switched on, which cmd/registry
// leaves off. Tests use it for the referrers-API path; Debian's docker-registry (distribution
// 2.8) lacks that API and serves the tag-fallback path. Prints "serving on port N".
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
)

var port = flag.Int("port", 0, "port to listen on (0: a free one)")

func main() {
	flag.Parse()
	listener, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", *port))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("serving on port %d\n", listener.Addr().(*net.TCPAddr).Port)
	s := &http.Server{
		ReadHeaderTimeout: 5 * time.Second,
		Handler:           registry.New(registry.WithReferrersSupport(true), registry.Logger(log.New(nopWriter{}, "", 0))),
	}
	log.Fatal(s.Serve(listener))
}

type nopWriter struct{}

func (nopWriter) Write(p []byte) (int, error) { return len(p), nil }
