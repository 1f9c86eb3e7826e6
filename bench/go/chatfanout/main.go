// chatfanout measures a chat room's fan-out when its members are spread
// over several servers: wsload's broadcast mode (../shared/bench) with
// -urls taking a comma-separated list. -c listeners are dealt round-robin
// over the URLs; one extra sender on the first URL sends -n messages
// "#<i>#xxx..." 2 ms apart; each must reach every listener. Reports the
// fan-out latency (send -> last listener received) and deliveries/s, in
// wsload's key=value format.
package main

import (
	"flag"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

var (
	urls   = flag.String("urls", "ws://127.0.0.1:8080/ws", "comma-separated server URLs")
	conns  = flag.Int("c", 500, "listeners, dealt round-robin over the URLs")
	n      = flag.Int("n", 300, "messages")
	size   = flag.Int("size", 32, "message padding in bytes")
	settle = flag.Duration("settle", 500*time.Millisecond, "wait after joining, for the room to learn everyone")
)

func pct(l []time.Duration, p float64) float64 {
	if len(l) == 0 {
		return 0
	}
	sort.Slice(l, func(a, b int) bool { return l[a] < l[b] })
	return float64(l[int(float64(len(l)-1)*p)].Microseconds()) / 1000
}

func dial(url string) *websocket.Conn {
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	c, _, err := d.Dial(url, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "dial:", err)
		os.Exit(1)
	}
	return c
}

func main() {
	flag.Parse()
	targets := strings.Split(*urls, ",")
	clients := make([]*websocket.Conn, *conns)
	for i := range clients {
		clients[i] = dial(targets[i%len(targets)])
	}
	time.Sleep(*settle)
	sender := dial(targets[0])
	go func() { // the sender's own copies are not counted
		for {
			if _, _, err := sender.ReadMessage(); err != nil {
				return
			}
		}
	}()
	arrivals := make([][]time.Time, *n)
	for i := range arrivals {
		arrivals[i] = make([]time.Time, 0, *conns)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	missing := 0
	for _, c := range clients {
		wg.Add(1)
		go func(c *websocket.Conn) {
			defer wg.Done()
			got := 0
			for got < *n {
				c.SetReadDeadline(time.Now().Add(10 * time.Second))
				_, m, err := c.ReadMessage()
				if err != nil {
					mu.Lock()
					missing += *n - got
					mu.Unlock()
					return
				}
				s := string(m)
				for {
					k := strings.Index(s, "#")
					if k < 0 {
						break
					}
					e := strings.Index(s[k+1:], "#")
					if e < 0 {
						break
					}
					id, err := strconv.Atoi(s[k+1 : k+1+e])
					s = s[k+1+e:]
					if err != nil || id < 0 || id >= *n {
						continue
					}
					mu.Lock()
					arrivals[id] = append(arrivals[id], time.Now())
					mu.Unlock()
					got++
				}
			}
		}(c)
	}
	sentAt := make([]time.Time, *n)
	start := time.Now()
	pad := strings.Repeat("x", *size)
	for i := 0; i < *n; i++ {
		sentAt[i] = time.Now()
		sender.WriteMessage(websocket.TextMessage, []byte(fmt.Sprintf("#%d#%s", i, pad)))
		time.Sleep(2 * time.Millisecond)
	}
	wg.Wait()
	el := time.Since(start)
	var fan []time.Duration
	deliveries := 0
	for i := range arrivals {
		deliveries += len(arrivals[i])
		if len(arrivals[i]) == *conns {
			last := arrivals[i][0]
			for _, t := range arrivals[i] {
				if t.After(last) {
					last = t
				}
			}
			fan = append(fan, last.Sub(sentAt[i]))
		}
	}
	fmt.Printf("servers=%d clients=%d messages=%d deliveries=%d missing=%d secs=%.3f deliveries_per_s=%.0f fanout_p50_ms=%.3f fanout_p99_ms=%.3f\n",
		len(targets), *conns, *n, deliveries, missing, el.Seconds(), float64(deliveries)/el.Seconds(), pct(fan, 0.5), pct(fan, 0.99))
	if missing > 0 {
		os.Exit(1)
	}
}
