// The generated Go client against a running producer and consumer.
//
// COFFEE_PRODUCER_TARGET and COFFEE_CONSUMER_TARGET name them
// (tests/integration/test_go_client.py starts a real broker and both services, then runs
// `go test` with these set). With COFFEE_TLS_CA set the client speaks TLS, and with
// COFFEE_TLS_CLIENT_CERT and COFFEE_TLS_CLIENT_KEY too, mTLS.
package client_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"os"
	"strconv"
	"testing"
	"time"

	ordersv1 "github.com/coffee-orders/coffee-orders/gen/go/coffee/orders/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

func transportCredentials(t *testing.T) credentials.TransportCredentials {
	t.Helper()
	caFile := os.Getenv("COFFEE_TLS_CA")
	if caFile == "" {
		return insecure.NewCredentials()
	}
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatalf("read CA: %v", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		t.Fatalf("no certificate in %s", caFile)
	}
	config := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	if certFile := os.Getenv("COFFEE_TLS_CLIENT_CERT"); certFile != "" {
		pair, err := tls.LoadX509KeyPair(certFile, os.Getenv("COFFEE_TLS_CLIENT_KEY"))
		if err != nil {
			t.Fatalf("load client certificate: %v", err)
		}
		config.Certificates = []tls.Certificate{pair}
	}
	return credentials.NewTLS(config)
}

func dial(t *testing.T, variable string) *grpc.ClientConn {
	t.Helper()
	target := os.Getenv(variable)
	if target == "" {
		t.Skipf("%s is not set: no running service to call", variable)
	}
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(transportCredentials(t)))
	if err != nil {
		t.Fatalf("dial %s: %v", target, err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func TestPlaceOrderThenConsumerCountsIt(t *testing.T) {
	orders := ordersv1.NewOrderServiceClient(dial(t, "COFFEE_PRODUCER_TARGET"))
	consumer := ordersv1.NewConsumerStatusServiceClient(dial(t, "COFFEE_CONSUMER_TARGET"))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	reply, err := orders.PlaceOrder(ctx, &ordersv1.PlaceOrderRequest{
		CustomerName: "Gopher",
		CoffeeType:   "Cortado",
		RequestId:    "go-client-test-1",
	})
	if err != nil {
		t.Fatalf("PlaceOrder: %v", err)
	}
	if reply.GetOrderId() == "" || reply.GetTopic() == "" || reply.GetOffset() < 0 {
		t.Fatalf("PlaceOrder answered %v", reply)
	}

	for {
		got, err := consumer.GetStatus(ctx, &ordersv1.GetStatusRequest{})
		if err != nil {
			t.Fatalf("GetStatus: %v", err)
		}
		if got.GetCounters().GetProcessed() >= 1 {
			if got.GetState() != ordersv1.ConsumerState_CONSUMER_STATE_RUNNING {
				t.Fatalf("consumer state %v, want RUNNING", got.GetState())
			}
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the consumer did not count the order in time: %v", got)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func TestBlankCustomerIsInvalidArgument(t *testing.T) {
	orders := ordersv1.NewOrderServiceClient(dial(t, "COFFEE_PRODUCER_TARGET"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	_, err := orders.PlaceOrder(ctx, &ordersv1.PlaceOrderRequest{CustomerName: " ", CoffeeType: "Latte"})
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("got %v, want InvalidArgument", err)
	}
}

// Both services serve OrderTrackingService: the producer on its port, the consumer on its
// status port. Each must answer the same for the same order.
func trackers(t *testing.T) map[string]ordersv1.OrderTrackingServiceClient {
	t.Helper()
	return map[string]ordersv1.OrderTrackingServiceClient{
		"producer": ordersv1.NewOrderTrackingServiceClient(dial(t, "COFFEE_PRODUCER_TARGET")),
		"consumer": ordersv1.NewOrderTrackingServiceClient(dial(t, "COFFEE_CONSUMER_TARGET")),
	}
}

// uniqueRequestID keeps a second run against the same services from being answered with the
// first run's order (a request_id always gives the same order_id).
func uniqueRequestID(prefix string) string {
	return prefix + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
}

func isFinal(state ordersv1.OrderState) bool {
	return state == ordersv1.OrderState_ORDER_STATE_PROCESSED ||
		state == ordersv1.OrderState_ORDER_STATE_DEAD_LETTERED
}

// watchToTheEnd reads a WatchOrder stream until the server ends it; it must end OK after a
// final state, within the test's deadline.
func watchToTheEnd(ctx context.Context, t *testing.T, tracker ordersv1.OrderTrackingServiceClient, request *ordersv1.WatchOrderRequest) []*ordersv1.OrderStatus {
	t.Helper()
	stream, err := tracker.WatchOrder(ctx, request)
	if err != nil {
		t.Fatalf("WatchOrder: %v", err)
	}
	var states []*ordersv1.OrderStatus
	for {
		reply, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("WatchOrder ended with %v after %v", err, states)
		}
		states = append(states, reply.GetOrder())
	}
	if len(states) == 0 || !isFinal(states[len(states)-1].GetState()) {
		t.Fatalf("WatchOrder ended OK without a final state: %v", states)
	}
	for _, state := range states[:len(states)-1] {
		if isFinal(state.GetState()) {
			t.Fatalf("WatchOrder went on after a final state: %v", states)
		}
	}
	return states
}

func TestPlacedOrderIsTrackedToProcessedOnBothServices(t *testing.T) {
	orders := ordersv1.NewOrderServiceClient(dial(t, "COFFEE_PRODUCER_TARGET"))
	tracking := trackers(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	placed, err := orders.PlaceOrder(ctx, &ordersv1.PlaceOrderRequest{
		CustomerName: "Gopher",
		CoffeeType:   "Flat White",
		RequestId:    uniqueRequestID("go-client-track"),
	})
	if err != nil {
		t.Fatalf("PlaceOrder: %v", err)
	}
	placement := &ordersv1.Placement{Partition: placed.GetPartition(), Offset: placed.GetOffset()}

	// GetOrder from the producer until PROCESSED: PENDING (or, briefly, NOT_FOUND) before.
	var processed *ordersv1.OrderStatus
	for processed == nil {
		reply, err := tracking["producer"].GetOrder(ctx, &ordersv1.GetOrderRequest{
			OrderId: placed.GetOrderId(), Placement: placement,
		})
		if err != nil {
			t.Fatalf("GetOrder: %v", err)
		}
		switch got := reply.GetOrder(); got.GetState() {
		case ordersv1.OrderState_ORDER_STATE_PROCESSED:
			processed = got
		case ordersv1.OrderState_ORDER_STATE_PENDING, ordersv1.OrderState_ORDER_STATE_NOT_FOUND:
			select {
			case <-ctx.Done():
				t.Fatalf("not processed in time; last answer %v", got)
			case <-time.After(200 * time.Millisecond):
			}
		default:
			t.Fatalf("GetOrder answered %v", got)
		}
	}
	if processed.GetOrderId() != placed.GetOrderId() || processed.GetTopic() != placed.GetTopic() ||
		processed.GetPartition() != placed.GetPartition() || processed.GetOffset() != placed.GetOffset() {
		t.Fatalf("processed %v, placed %v", processed, placed)
	}
	if processed.GetTime() == nil || processed.GetProcessedBy() == "" {
		t.Fatalf("PROCESSED without its time or processing member: %v", processed)
	}

	for name, tracker := range tracking {
		reply, err := tracker.GetOrder(ctx, &ordersv1.GetOrderRequest{OrderId: placed.GetOrderId()})
		if err != nil {
			t.Fatalf("GetOrder from the %s: %v", name, err)
		}
		if !proto.Equal(reply.GetOrder(), processed) {
			t.Fatalf("GetOrder from the %s answered %v, the producer %v", name, reply.GetOrder(), processed)
		}
		watchCtx, stop := context.WithTimeout(ctx, 30*time.Second)
		states := watchToTheEnd(watchCtx, t, tracker, &ordersv1.WatchOrderRequest{
			OrderId: placed.GetOrderId(), Placement: placement,
		})
		stop()
		if last := states[len(states)-1]; !proto.Equal(last, processed) {
			t.Fatalf("WatchOrder from the %s ended with %v, GetOrder said %v", name, last, processed)
		}
	}
}

func TestPlaceOrderWaitingForProcessing(t *testing.T) {
	orders := ordersv1.NewOrderServiceClient(dial(t, "COFFEE_PRODUCER_TARGET"))
	tracking := trackers(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	reply, err := orders.PlaceOrder(ctx, &ordersv1.PlaceOrderRequest{
		CustomerName: "Gopher",
		CoffeeType:   "Ristretto",
		RequestId:    uniqueRequestID("go-client-wait"),
		WaitFor:      ordersv1.WaitFor_WAIT_FOR_PROCESSED,
	})
	if err != nil {
		t.Fatalf("PlaceOrder waiting for processing: %v", err)
	}
	processing := reply.GetProcessing()
	if processing.GetState() != ordersv1.OrderState_ORDER_STATE_PROCESSED ||
		processing.GetOrderId() != reply.GetOrderId() || processing.GetOffset() != reply.GetOffset() {
		t.Fatalf("PlaceOrder answered %v", reply)
	}
	for name, tracker := range tracking {
		got, err := tracker.GetOrder(ctx, &ordersv1.GetOrderRequest{OrderId: reply.GetOrderId()})
		if err != nil {
			t.Fatalf("GetOrder from the %s: %v", name, err)
		}
		if !proto.Equal(got.GetOrder(), processing) {
			t.Fatalf("GetOrder from the %s answered %v, PlaceOrder %v", name, got.GetOrder(), processing)
		}
	}
}
