// Command httpsarama has the shape of the system coffee-orders replaced: net/http `POST /order`
// with the JSON body {"customer_name": ..., "coffee_type": ...}, an IBM/sarama SyncProducer with
// acks=all (WaitForAll, idempotent), answering after Kafka's acknowledgement with the partition
// and offset (500 when Kafka fails, as the original did). The benchmark runs it beside the Python
// producer on the same broker. It is a benchmark peer, not a product.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"log"
	"net"
	"net/http"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/IBM/sarama"
	"github.com/coffee-orders/coffee-orders/bench/peers/internal/order"
)

// maxBodyBytes bounds what one request may send; an order is far smaller.
const maxBodyBytes = 64 << 10

func main() {
	listen := flag.String("listen", "127.0.0.1:8080", "HTTP address to serve on")
	brokers := flag.String("brokers", "127.0.0.1:9092", "Kafka bootstrap servers, comma-separated")
	topic := flag.String("topic", "coffee_orders", "Kafka topic")
	retryMax := flag.Int("retry-max", 5, "producer retries (KAFKA_RETRY_MAX of the original)")
	idempotent := flag.Bool("idempotent", true, "idempotent producer (sarama then allows one request in flight per broker)")
	flag.Parse()

	config := sarama.NewConfig()
	config.ClientID = "bench-http-sarama"
	config.Producer.RequiredAcks = sarama.WaitForAll
	config.Producer.Retry.Max = *retryMax
	config.Producer.Return.Successes = true // a SyncProducer needs both
	config.Producer.Return.Errors = true
	if *idempotent {
		config.Producer.Idempotent = true
		config.Net.MaxOpenRequests = 1 // sarama refuses an idempotent producer otherwise
	}
	producer, err := sarama.NewSyncProducer(strings.Split(*brokers, ","), config)
	if err != nil {
		log.Fatalf("kafka at %s: %v", *brokers, err)
	}
	defer func() {
		if err := producer.Close(); err != nil {
			log.Printf("closing the producer: %v", err)
		}
	}()

	mux := http.NewServeMux()
	mux.Handle("POST /order", &orderHandler{producer: producer, topic: *topic})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK) // the producer reached Kafka before the port opened
	})
	listener, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatalf("listen: %v", err)
	}
	server := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := server.Shutdown(shutdownCtx); err != nil {
			log.Printf("shutdown: %v", err)
		}
	}()
	log.Printf("httpsarama serving on %s, producing to %s on %s", listener.Addr(), *topic, *brokers)
	if err := server.Serve(listener); !errors.Is(err, http.ErrServerClosed) {
		log.Fatalf("serve: %v", err)
	}
}

type orderHandler struct {
	producer sarama.SyncProducer
	topic    string
}

type placed struct {
	OrderID   string `json:"order_id"`
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
}

func (h *orderHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body order.Order
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBodyBytes)).Decode(&body); err != nil {
		answer(w, http.StatusBadRequest, map[string]string{"error": "the body is not an order: " + err.Error()})
		return
	}
	o, err := order.Checked(body.CustomerName, body.CoffeeType)
	if err != nil {
		answer(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	id := order.NewID()
	partition, offset, err := h.producer.SendMessage(&sarama.ProducerMessage{
		Topic: h.topic,
		Key:   sarama.StringEncoder(id),
		Value: sarama.ByteEncoder(o.Value()),
		Headers: []sarama.RecordHeader{
			{Key: []byte(order.IDHeader), Value: []byte(id)},
			{Key: []byte(order.ContentTypeHeader), Value: []byte(order.ContentType)},
		},
	})
	if err != nil {
		log.Printf("order %s not delivered: %v", id, err)
		answer(w, http.StatusInternalServerError, map[string]string{"error": "the order was not delivered to Kafka"})
		return
	}
	answer(w, http.StatusOK, placed{OrderID: id, Topic: h.topic, Partition: partition, Offset: offset})
}

func answer(w http.ResponseWriter, code int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	if err := json.NewEncoder(w).Encode(body); err != nil {
		log.Printf("writing the answer: %v", err)
	}
}
