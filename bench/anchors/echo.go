// echo.go - the Go anchor of the echo benchmarks (bench/net/run-echo.sh):
// a goroutine per connection, the way Go servers are written.  Go's
// netpoller parks a goroutine whose socket is not ready, as weft's parks a
// green thread, so this is the figure weft's green echo server is held
// against.
//
// It listens on 127.0.0.1 (port 0 unless given one), prints "port N" on
// stdout, and serves until killed.  Each connection's goroutine reads up to
// 512 bytes and writes them back (the same buffer size as the C servers).
// GOMAXPROCS is Go's default (the CPU count) unless set in the
// environment; Go 1.19 raises RLIMIT_NOFILE to its hard limit by itself.
//
// Build and run: go build -o echo bench/anchors/echo.go && ./echo [port]
package main

import (
	"fmt"
	"net"
	"os"
)

func serve(c net.Conn) {
	defer c.Close()
	buf := make([]byte, 512)
	for {
		n, err := c.Read(buf)
		if err != nil {
			return
		}
		if _, err := c.Write(buf[:n]); err != nil {
			return
		}
	}
}

func main() {
	port := "0"
	if len(os.Args) > 1 {
		port = os.Args[1]
	}
	l, err := net.Listen("tcp4", "127.0.0.1:"+port)
	if err != nil {
		fmt.Fprintln(os.Stderr, "echo:", err)
		os.Exit(1)
	}
	fmt.Printf("port %d\n", l.Addr().(*net.TCPAddr).Port)
	for {
		c, err := l.Accept()
		if err != nil {
			// Out of descriptors or similar: the connection stays in the
			// backlog; the client retries.
			continue
		}
		go serve(c)
	}
}
