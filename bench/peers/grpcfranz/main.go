// Command grpcfranz serves the coffee.orders.v1 OrderService (PlaceOrder and the PlaceOrders
// stream) with grpc-go and a franz-go (kgo) producer: acks=all, idempotent, each order answered
// only after Kafka acknowledged it. The benchmark runs it beside the Python producer on the same
// broker, to show what the same contract costs in Go. It is a benchmark peer, not a product.
package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"log"
	"net"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/coffee-orders/coffee-orders/bench/peers/internal/order"
	ordersv1 "github.com/coffee-orders/coffee-orders/gen/go/coffee/orders/v1"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// maxBatchOrders is the contract's limit on the orders of one PlaceOrdersRequest.
const maxBatchOrders = 1000

// batchesInFlight bounds the batches of one stream handed to Kafka and not yet answered; when
// it is reached the stream is not read (HTTP/2 flow control pushes back on the caller).
const batchesInFlight = 16

func main() {
	listen := flag.String("listen", "127.0.0.1:50071", "gRPC address to serve on")
	brokers := flag.String("brokers", "127.0.0.1:9092", "Kafka bootstrap servers, comma-separated")
	topic := flag.String("topic", "coffee_orders", "Kafka topic")
	linger := flag.Duration("linger", time.Millisecond, "producer linger (the Python producer's linger.ms)")
	deliveryTimeout := flag.Duration("delivery-timeout", 10*time.Second, "give up on a record after this long")
	flag.Parse()

	client, err := kgo.NewClient(
		kgo.SeedBrokers(strings.Split(*brokers, ",")...),
		kgo.ClientID("bench-grpc-franz"),
		kgo.DefaultProduceTopic(*topic),
		kgo.RequiredAcks(kgo.AllISRAcks()), // idempotent writes stay on (kgo's default)
		kgo.ProducerLinger(*linger),
		kgo.ProducerBatchCompression(kgo.NoCompression()), // as the Python producer
		kgo.RecordDeliveryTimeout(*deliveryTimeout),
	)
	if err != nil {
		log.Fatalf("kafka client: %v", err)
	}
	defer client.Close()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	pingCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := client.Ping(pingCtx); err != nil {
		log.Fatalf("kafka at %s: %v", *brokers, err)
	}

	listener, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatalf("listen: %v", err)
	}
	server := grpc.NewServer()
	ordersv1.RegisterOrderServiceServer(server, &orderServer{client: client, topic: *topic})
	healthServer := health.NewServer() // SERVING for every service once Kafka answered the ping
	healthpb.RegisterHealthServer(server, healthServer)
	go func() {
		<-ctx.Done()
		healthServer.Shutdown()
		server.GracefulStop()
	}()
	log.Printf("grpcfranz serving on %s, producing to %s on %s", listener.Addr(), *topic, *brokers)
	if err := server.Serve(listener); err != nil {
		log.Fatalf("serve: %v", err)
	}
}

type orderServer struct {
	ordersv1.UnimplementedOrderServiceServer
	client *kgo.Client
	topic  string
}

func (s *orderServer) record(o order.Order) *kgo.Record {
	id := order.NewID()
	return &kgo.Record{
		Key:   []byte(id),
		Value: o.Value(),
		Headers: []kgo.RecordHeader{
			{Key: order.IDHeader, Value: []byte(id)},
			{Key: order.ContentTypeHeader, Value: []byte(order.ContentType)},
		},
	}
}

func confirmation(r *kgo.Record) *ordersv1.PlaceOrderResponse {
	return &ordersv1.PlaceOrderResponse{
		OrderId:   string(r.Key),
		Topic:     r.Topic,
		Partition: r.Partition,
		Offset:    r.Offset,
		Timestamp: timestamppb.New(r.Timestamp),
	}
}

// kafkaCode maps a failed delivery to the status PlaceOrder documents for it.
func kafkaCode(err error) codes.Code {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return codes.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		return codes.Canceled
	case errors.Is(err, kgo.ErrRecordTimeout), kerr.IsRetriable(err):
		return codes.Unavailable
	}
	return codes.Internal
}

// PlaceOrder answers once Kafka acknowledged the order.
func (s *orderServer) PlaceOrder(ctx context.Context, req *ordersv1.PlaceOrderRequest) (*ordersv1.PlaceOrderResponse, error) {
	o, err := order.Checked(req.GetCustomerName(), req.GetCoffeeType())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	delivered, err := s.client.ProduceSync(ctx, s.record(o)).First()
	if err != nil {
		return nil, status.Error(kafkaCode(err), err.Error())
	}
	return confirmation(delivered), nil
}

// batch is one PlaceOrdersRequest handed to Kafka: a result per order, filled in by the
// delivery callbacks; done counts the orders still waiting for theirs.
type batch struct {
	results []*ordersv1.OrderResult
	done    sync.WaitGroup
}

func failed(code codes.Code, err error) *ordersv1.OrderResult {
	return &ordersv1.OrderResult{Outcome: &ordersv1.OrderResult_Error{
		Error: &ordersv1.OrderError{Code: int32(code), Message: err.Error()}}}
}

func (s *orderServer) produce(ctx context.Context, orders []*ordersv1.PlaceOrderRequest) *batch {
	b := &batch{results: make([]*ordersv1.OrderResult, len(orders))}
	b.done.Add(len(orders))
	for i, req := range orders {
		o, err := order.Checked(req.GetCustomerName(), req.GetCoffeeType())
		if err != nil {
			b.results[i] = failed(codes.InvalidArgument, err)
			b.done.Done()
			continue
		}
		s.client.Produce(ctx, s.record(o), func(r *kgo.Record, err error) {
			if err != nil {
				b.results[i] = failed(kafkaCode(err), err)
			} else {
				b.results[i] = &ordersv1.OrderResult{
					Outcome: &ordersv1.OrderResult_Confirmed{Confirmed: confirmation(r)}}
			}
			b.done.Done()
		})
	}
	return b
}

// PlaceOrders reads batches and hands each to Kafka at once; a second goroutine answers them in
// the order they came, each when its last order is acknowledged. The handler returns only after
// that goroutine has finished, so nothing is sent on a stream that has ended.
func (s *orderServer) PlaceOrders(stream ordersv1.OrderService_PlaceOrdersServer) error {
	pending := make(chan *batch, batchesInFlight)
	answered := make(chan error, 1)
	go func() { answered <- answerInOrder(stream, pending) }()
	readErr := s.readBatches(stream, pending)
	close(pending)
	answerErr := <-answered
	if readErr != nil {
		return readErr
	}
	return answerErr
}

func (s *orderServer) readBatches(stream ordersv1.OrderService_PlaceOrdersServer, pending chan<- *batch) error {
	for {
		req, err := stream.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if n := len(req.GetOrders()); n == 0 || n > maxBatchOrders {
			return status.Errorf(codes.InvalidArgument, "a request holds 1 to %d orders, not %d", maxBatchOrders, n)
		}
		pending <- s.produce(stream.Context(), req.GetOrders())
	}
}

// answerInOrder sends one response per batch, in order. After a failed Send it keeps draining
// (without sending) so that the reader never blocks on a full channel.
func answerInOrder(stream ordersv1.OrderService_PlaceOrdersServer, pending <-chan *batch) error {
	var sendErr error
	for b := range pending {
		b.done.Wait()
		if sendErr == nil {
			sendErr = stream.Send(&ordersv1.PlaceOrdersResponse{Results: b.results})
		}
	}
	return sendErr
}
