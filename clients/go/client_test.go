// The generated Go client against a running producer and consumer.
//
// COFFEE_PRODUCER_TARGET and COFFEE_CONSUMER_TARGET name them (tests/test_go_client.py starts a
// real broker and both services, then runs `go test` with these set). With COFFEE_TLS_CA set the
// client speaks TLS, and with COFFEE_TLS_CLIENT_CERT and COFFEE_TLS_CLIENT_KEY too, mTLS.
package client_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"os"
	"testing"
	"time"

	ordersv1 "github.com/coffee-orders/coffee-orders/gen/go/coffee/orders/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
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
