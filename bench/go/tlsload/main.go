// tlsload is tcpload (../shared/bench/go/tcpload) over TLS, plus the Go
// peer it is measured against: with -serve it is a TLS line echo server
// written the idiomatic way (crypto/tls, goroutine per connection,
// buffered reader), the TLS twin of go-tcpecho.
//
//	tlsload -serve -addr 127.0.0.1:9000 -cert server.pem -key server.key
//	tlsload -addr 127.0.0.1:9000 -ca ca.pem -c 50 -n 20000 -window 32
//
// Load mode prints tcpload's figures (lines_per_s, p50_ms, p99_ms); every
// echoed line is checked byte for byte.
package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"sort"
	"strings"
	"sync"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:1234", "server address")
	serve := flag.Bool("serve", false, "be the Go TLS echo server instead of the load")
	cert := flag.String("cert", "", "with -serve: certificate (PEM)")
	key := flag.String("key", "", "with -serve: private key (PEM)")
	ca := flag.String("ca", "", "CA certificate (PEM) the server's certificate is signed by")
	name := flag.String("servername", "localhost", "name the certificate must carry")
	conns := flag.Int("c", 10, "connections")
	n := flag.Int("n", 10000, "lines per connection")
	size := flag.Int("size", 32, "bytes per line, newline excluded")
	window := flag.Int("window", 16, "lines in flight per connection")
	flag.Parse()
	if *serve {
		echo(*addr, *cert, *key)
		return
	}
	pem, err := os.ReadFile(*ca)
	if err != nil {
		log.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		log.Fatalf("no certificate in %s", *ca)
	}
	load(*addr, &tls.Config{RootCAs: roots, ServerName: *name}, *conns, *n, *size, *window)
}

func echo(addr, certFile, keyFile string) {
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		log.Fatal(err)
	}
	l, err := tls.Listen("tcp", addr, &tls.Config{Certificates: []tls.Certificate{pair}})
	if err != nil {
		log.Fatal(err)
	}
	for {
		c, err := l.Accept()
		if err != nil {
			log.Fatal(err)
		}
		go func(c net.Conn) {
			defer c.Close()
			r := bufio.NewReaderSize(c, 64*1024)
			w := bufio.NewWriterSize(c, 64*1024)
			for {
				line, err := r.ReadSlice('\n')
				if err != nil {
					return
				}
				w.Write(line)
				if r.Buffered() == 0 && w.Flush() != nil {
					return
				}
			}
		}(c)
	}
}

func load(addr string, config *tls.Config, conns, n, size, window int) {
	payload := strings.Repeat("x", size)
	var wg sync.WaitGroup
	var mu sync.Mutex
	lat := make([]time.Duration, 0, conns*n)
	errs := 0
	start := time.Now()
	for i := 0; i < conns; i++ {
		wg.Add(1)
		go func(id int) {
			defer wg.Done()
			c, err := tls.Dial("tcp", addr, config)
			if err != nil {
				mu.Lock()
				errs++
				mu.Unlock()
				fmt.Fprintln(os.Stderr, "dial:", err)
				return
			}
			defer c.Close()
			sent := make(chan time.Time, window)
			local := make([]time.Duration, 0, n)
			done := make(chan error, 1)
			go func() {
				r := bufio.NewReaderSize(c, 64*1024)
				for j := 0; j < n; j++ {
					line, err := r.ReadString('\n')
					if err != nil {
						done <- fmt.Errorf("read %d: %v", j, err)
						return
					}
					local = append(local, time.Since(<-sent))
					if line != payload+"\n" {
						done <- fmt.Errorf("bad echo %q", line)
						return
					}
				}
				done <- nil
			}()
			w := bufio.NewWriterSize(c, 64*1024)
			for j := 0; j < n; j++ {
				sent <- time.Now()
				w.WriteString(payload)
				w.WriteByte('\n')
				if len(sent) == cap(sent) || j == n-1 {
					w.Flush()
				}
			}
			err = <-done
			mu.Lock()
			if err != nil {
				errs++
				fmt.Fprintln(os.Stderr, "conn", id, err)
			}
			lat = append(lat, local...)
			mu.Unlock()
		}(i)
	}
	wg.Wait()
	el := time.Since(start)
	sort.Slice(lat, func(a, b int) bool { return lat[a] < lat[b] })
	pct := func(p float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		return float64(lat[int(float64(len(lat)-1)*p)].Microseconds()) / 1000
	}
	total := len(lat)
	fmt.Printf("lines=%d errors=%d secs=%.3f lines_per_s=%.0f MB_per_s=%.2f p50_ms=%.3f p99_ms=%.3f\n",
		total, errs, el.Seconds(), float64(total)/el.Seconds(),
		float64(total*(size+1))/el.Seconds()/1e6, pct(0.5), pct(0.99))
	if errs > 0 {
		os.Exit(1)
	}
}
