"""The PlaceOrder service: takes orders over gRPC, answers once Kafka has confirmed them."""
