// Command streamload drives OrderService/PlaceOrders: several bidirectional streams, each keeping
// a window of batches unanswered, and prints one JSON object with the throughput of confirmed
// orders and the latency of each batch (every order of a batch waits exactly as long as it).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	ordersv1 "github.com/coffee-orders/coffee-orders/gen/go/coffee/orders/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

type report struct {
	Streams    int     `json:"streams"`
	Window     int     `json:"window"`
	Batch      int     `json:"batch"`
	Sent       int64   `json:"sent"`
	Confirmed  int64   `json:"confirmed"`
	Failed     int64   `json:"failed"`
	Seconds    float64 `json:"seconds"`
	PerSecond  float64 `json:"per_second"`
	P50Ms      float64 `json:"p50_ms"`
	P99Ms      float64 `json:"p99_ms"`
	MaxMs      float64 `json:"max_ms"`
	FirstError string  `json:"first_error,omitempty"`
}

func main() {
	target := flag.String("target", "127.0.0.1:50051", "producer address")
	streams := flag.Int("streams", 4, "concurrent PlaceOrders streams")
	window := flag.Int("window", 4, "batches sent and not yet answered, per stream")
	batch := flag.Int("batch", 500, "orders per PlaceOrdersRequest")
	total := flag.Int64("orders", 200000, "orders to send in all")
	connections := flag.Int("connections", 1, "connections the streams are spread over "+
		"(stream i on connection i mod connections), e.g. to reach each of producer --workers N")
	flag.Parse()
	if *connections < 1 || *connections > *streams {
		log.Fatalf("-connections must be 1 to -streams (%d), not %d", *streams, *connections)
	}

	clients := make([]ordersv1.OrderServiceClient, *connections)
	for c := range clients {
		conn, err := grpc.NewClient(*target,
			grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			log.Fatal(err)
		}
		defer conn.Close()
		clients[c] = ordersv1.NewOrderServiceClient(conn)
	}

	batchesEach := int(*total) / (*batch * *streams)
	var confirmed, failed, sent atomic.Int64
	var firstError atomic.Value
	latencies := make([][]time.Duration, *streams)
	var wg sync.WaitGroup
	started := time.Now()
	for s := 0; s < *streams; s++ {
		wg.Add(1)
		go func(s int) {
			defer wg.Done()
			err := runStream(clients[s%len(clients)], s, batchesEach, *batch, *window, &sent, &confirmed, &failed, &latencies[s])
			if err != nil {
				firstError.CompareAndSwap(nil, err.Error())
			}
		}(s)
	}
	wg.Wait()
	seconds := time.Since(started).Seconds()

	var all []time.Duration
	for _, l := range latencies {
		all = append(all, l...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	r := report{Streams: *streams, Window: *window, Batch: *batch, Sent: sent.Load(),
		Confirmed: confirmed.Load(), Failed: failed.Load(), Seconds: seconds,
		PerSecond: float64(confirmed.Load()) / seconds,
		P50Ms:     quantile(all, 0.50), P99Ms: quantile(all, 0.99), MaxMs: quantile(all, 1)}
	if e, ok := firstError.Load().(string); ok {
		r.FirstError = e
	}
	if err := json.NewEncoder(os.Stdout).Encode(r); err != nil {
		log.Fatal(err)
	}
}

func runStream(client ordersv1.OrderServiceClient, s, batches, size, window int,
	sent, confirmed, failed *atomic.Int64, latencies *[]time.Duration) error {
	stream, err := client.PlaceOrders(context.Background())
	if err != nil {
		return err
	}
	slots := make(chan struct{}, window)
	sentAt := make(chan time.Time, window)
	received := make(chan error, 1)
	go func() {
		for {
			reply, err := stream.Recv()
			if err == io.EOF {
				received <- nil
				return
			}
			if err != nil {
				received <- err
				return
			}
			*latencies = append(*latencies, time.Since(<-sentAt))
			for _, result := range reply.GetResults() {
				if result.GetConfirmed() != nil {
					confirmed.Add(1)
				} else {
					failed.Add(1)
				}
			}
			<-slots
		}
	}()
	for b := 0; b < batches; b++ {
		request := &ordersv1.PlaceOrdersRequest{Orders: make([]*ordersv1.PlaceOrderRequest, size)}
		for i := range request.Orders {
			request.Orders[i] = &ordersv1.PlaceOrderRequest{
				CustomerName: fmt.Sprintf("bench %d-%d-%d", s, b, i), CoffeeType: "Latte"}
		}
		slots <- struct{}{}
		sentAt <- time.Now()
		if err := stream.Send(request); err != nil {
			break // the reason arrives on Recv
		}
		sent.Add(int64(size))
	}
	if err := stream.CloseSend(); err != nil {
		return err
	}
	return <-received
}

func quantile(sorted []time.Duration, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	index := int(q * float64(len(sorted)-1))
	return float64(sorted[index].Microseconds()) / 1000
}
