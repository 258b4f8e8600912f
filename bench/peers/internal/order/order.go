// Package order is what both Go peers do with an order before Kafka sees it, the same work as the
// Python producer: trim and check both fields, make an order_id, encode the seed's JSON value, and
// name the headers (order_id, content-type). The order_id is the message key.
package order

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxFieldChars is the longest customer_name or coffee_type accepted, after trimming.
const MaxFieldChars = 100

// Header names and the content type, as the Python producer writes them.
const (
	IDHeader          = "order_id"
	ContentTypeHeader = "content-type"
	ContentType       = "application/json"
)

// Order is one coffee order; its JSON is exactly the seed's value.
type Order struct {
	CustomerName string `json:"customer_name"`
	CoffeeType   string `json:"coffee_type"`
}

// Checked returns the order with both fields trimmed, or the first rule a field breaks.
func Checked(customerName, coffeeType string) (Order, error) {
	name, err := checkField("customer_name", customerName)
	if err != nil {
		return Order{}, err
	}
	coffee, err := checkField("coffee_type", coffeeType)
	if err != nil {
		return Order{}, err
	}
	return Order{CustomerName: name, CoffeeType: coffee}, nil
}

func checkField(field, value string) (string, error) {
	text := strings.TrimSpace(value)
	switch {
	case text == "":
		return "", fmt.Errorf("%s is required and must not be blank", field)
	case !utf8.ValidString(text):
		return "", fmt.Errorf("%s must be valid UTF-8", field)
	case utf8.RuneCountInString(text) > MaxFieldChars:
		return "", fmt.Errorf("%s must be at most %d characters", field, MaxFieldChars)
	case strings.ContainsFunc(text, unicode.IsControl):
		return "", fmt.Errorf("%s must not contain control characters", field)
	}
	return text, nil
}

// Value is the Kafka message value: compact JSON, UTF-8, no HTML escaping.
func (o Order) Value() []byte {
	var out bytes.Buffer
	encoder := json.NewEncoder(&out)
	encoder.SetEscapeHTML(false)
	if err := encoder.Encode(o); err != nil {
		panic(err) // two strings always encode
	}
	return bytes.TrimSuffix(out.Bytes(), []byte("\n"))
}

// NewID is a random (version 4) UUID in its usual text form.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
