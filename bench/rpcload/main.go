// rpcload: drives an RPC server (JSON-RPC, or Go's net/rpc gob with
// -dialect gob) over TCP with pipelined calls of Arith.Multiply: -c connections, each keeping -window calls in flight
// (requests batched into few writes, as a busy client would send them),
// checking every result. Prints key=value figures:
//
//	calls_per_s=... p50_ms=... p99_ms=... errors=...
//
//	rpcload -addr 127.0.0.1:1234 -c 50 -n 4000 -window 32 [-dialect go|2.0|gob]
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"net/rpc"
	"os"
	"sort"
	"strconv"
	"sync"
	"time"
)

type reply struct {
	ID     uint64          `json:"id"`
	Result json.RawMessage `json:"result"`
	Error  json.RawMessage `json:"error"`
}

func drive(addr string, n, window int, dialect string) ([]time.Duration, int, error) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, 0, err
	}
	defer conn.Close()
	sent := make([]time.Time, n)
	tokens := make(chan struct{}, window)
	for i := 0; i < window; i++ {
		tokens <- struct{}{}
	}
	writeErr := make(chan error, 1)
	go func() {
		w := bufio.NewWriterSize(conn, 16*1024)
		for i := 0; i < n; i++ {
			select {
			case <-tokens:
			default:
				if err := w.Flush(); err != nil {
					writeErr <- err
					return
				}
				<-tokens
			}
			sent[i] = time.Now()
			if dialect == "2.0" {
				fmt.Fprintf(w, `{"jsonrpc":"2.0","method":"Arith.Multiply","params":{"A":%d,"B":3},"id":%d}`+"\n", i, i)
			} else {
				fmt.Fprintf(w, `{"method":"Arith.Multiply","params":[{"A":%d,"B":3}],"id":%d}`+"\n", i, i)
			}
		}
		writeErr <- w.Flush()
	}()
	dec := json.NewDecoder(bufio.NewReaderSize(conn, 16*1024))
	lat := make([]time.Duration, 0, n)
	errors := 0
	for got := 0; got < n; got++ {
		var r reply
		if err := dec.Decode(&r); err != nil {
			return lat, errors, fmt.Errorf("after %d replies: %w", got, err)
		}
		if r.ID >= uint64(n) {
			return lat, errors, fmt.Errorf("unexpected id %d", r.ID)
		}
		lat = append(lat, time.Since(sent[r.ID]))
		if string(r.Result) != strconv.FormatUint(r.ID*3, 10) {
			errors++
		}
		tokens <- struct{}{}
	}
	return lat, errors, <-writeErr
}

// Args is Arith.Multiply's argument, as in seed 002.
type Args struct{ A, B int }

// driveGob keeps window calls in flight through Go's own rpc.Client (gob).
func driveGob(addr string, n, window int) ([]time.Duration, int, error) {
	client, err := rpc.Dial("tcp", addr)
	if err != nil {
		return nil, 0, err
	}
	defer client.Close()
	done := make(chan *rpc.Call, window)
	sent := make([]time.Time, n)
	lat := make([]time.Duration, 0, n)
	errors, next, inflight := 0, 0, 0
	for len(lat) < n {
		for inflight < window && next < n {
			sent[next] = time.Now()
			client.Go("Arith.Multiply", &Args{A: next, B: 3}, new(int), done)
			next++
			inflight++
		}
		call := <-done
		inflight--
		if call.Error != nil {
			return lat, errors, call.Error
		}
		a := call.Args.(*Args).A
		lat = append(lat, time.Since(sent[a]))
		if *call.Reply.(*int) != a*3 {
			errors++
		}
	}
	return lat, errors, nil
}

func main() {
	addr := flag.String("addr", "127.0.0.1:1234", "server address")
	conns := flag.Int("c", 50, "connections")
	n := flag.Int("n", 4000, "calls per connection")
	window := flag.Int("window", 32, "calls in flight per connection")
	dialect := flag.String("dialect", "go", "go, 2.0 or gob")
	flag.Parse()
	var mu sync.Mutex
	var all []time.Duration
	errors := 0
	failed := false
	var wg sync.WaitGroup
	start := time.Now()
	for c := 0; c < *conns; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lat []time.Duration
			var bad int
			var err error
			if *dialect == "gob" {
				lat, bad, err = driveGob(*addr, *n, *window)
			} else {
				lat, bad, err = drive(*addr, *n, *window, *dialect)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				log.Println(err)
				failed = true
			}
			all = append(all, lat...)
			errors += bad
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	pct := func(p float64) float64 {
		if len(all) == 0 {
			return 0
		}
		return float64(all[int(p*float64(len(all)-1))].Microseconds()) / 1000
	}
	fmt.Printf("calls_per_s=%.0f p50_ms=%.2f p99_ms=%.2f errors=%d\n",
		float64(len(all))/elapsed.Seconds(), pct(0.50), pct(0.99), errors)
	if failed || errors > 0 {
		os.Exit(1)
	}
}
