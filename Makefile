# kefu — make run starts the server on its embedded defaults; make test runs every test.
SHELL := /bin/bash
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
ORT_LIB = $(shell scripts/ort.sh)

.PHONY: run build ort test bench fuzz model container clean

## run: provision ONNX Runtime, build, and serve the embedded demo bot on 127.0.0.1:8080
run: build
	./bin/kefu handoff-sink & SINK=$$!; trap 'kill $$SINK 2>/dev/null' EXIT INT TERM; \
	KEFU_ORT_LIB=$(ORT_LIB) ./bin/kefu serve $(ARGS)

## build: build bin/kefu (needs cgo and gcc)
build:
	CGO_ENABLED=1 $(GO) build -ldflags "$(LDFLAGS)" -o bin/kefu ./cmd/kefu

## ort: find or fetch the ONNX Runtime library (third_party/onnxruntime/)
ort:
	@scripts/ort.sh

## test: every test, with the race detector, against the real ONNX Runtime and Redis
test:
	$(GO) vet ./...
	scripts/browser.sh
	scripts/checkers.sh
	KEFU_ORT_LIB=$(ORT_LIB) scripts/with-redis.sh $(GO) test -race -count=1 -timeout 20m ./...

## bench: kefu bench on the BERT-shaped 4×256 model, the KB on 100,000 articles, then the Go benchmarks
## (a turn, a flow step, a KB search, a Redis save, the model: compare runs with benchstat)
bench: build
	KEFU_ORT_LIB=$(ORT_LIB) ./bin/kefu bench
	./bin/kefu bench kb
	KEFU_ORT_LIB=$(ORT_LIB) scripts/with-redis.sh $(GO) test -run '^$$' -bench . -benchmem ./...

## fuzz: run each fuzz target for FUZZTIME (default 30s)
FUZZTIME ?= 30s
fuzz:
	KEFU_ORT_LIB=$(ORT_LIB) $(GO) test ./models -run '^$$' -fuzz '^FuzzParseManifest$$' -fuzztime $(FUZZTIME)
	KEFU_ORT_LIB=$(ORT_LIB) $(GO) test ./models -run '^$$' -fuzz '^FuzzEncode$$' -fuzztime $(FUZZTIME)
	KEFU_ORT_LIB=$(ORT_LIB) $(GO) test ./models -run '^$$' -fuzz '^FuzzClassify$$' -fuzztime $(FUZZTIME)
	$(GO) test ./eval -run '^$$' -fuzz '^FuzzParseNLU$$' -fuzztime $(FUZZTIME)
	$(GO) test ./eval -run '^$$' -fuzz '^FuzzParseClinc$$' -fuzztime $(FUZZTIME)
	$(GO) test ./eval -run '^$$' -fuzz '^FuzzParseStories$$' -fuzztime $(FUZZTIME)
	$(GO) test ./kb -run '^$$' -fuzz '^FuzzParseFiles$$' -fuzztime $(FUZZTIME)
	KEFU_ORT_LIB=$(ORT_LIB) $(GO) test ./engine/httpapi -run '^$$' -fuzz '^FuzzParseRequest$$' -fuzztime $(FUZZTIME)
	KEFU_ORT_LIB=$(ORT_LIB) $(GO) test ./engine/httpapi -run '^$$' -fuzz '^FuzzMessageRequest$$' -fuzztime $(FUZZTIME)
	$(GO) test ./dialogs -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME)
	$(GO) test ./handoff/webhook -run '^$$' -fuzz '^FuzzVerify$$' -fuzztime $(FUZZTIME)
	KEFU_ORT_LIB=$(ORT_LIB) $(GO) test ./engine/httpapi -run '^$$' -fuzz '^FuzzQuery$$' -fuzztime $(FUZZTIME)

## model: retrain the embedded bilingual model from cmd/kefu/bot/nlu and the public train splits that
## cmd/kefu/bot/realtext.yaml maps onto the demo's labels (needs ../shared/data; deterministic: seed 1, 2 workers)
model:
	$(GO) run ./cmd/kefu train --data cmd/kefu/bot/nlu --emotion-data cmd/kefu/bot/nlu \
		--public cmd/kefu/bot/realtext.yaml --public-dir ../shared/data \
		--name kefu-bot --model-version 1.1.0 --max-seq-len 64 --ensemble 1 --epochs 15 --early-stop --min-df 3 --workers 2 --seed 1 \
		--out cmd/kefu/bot/model

## container: build kefu's image without a registry (debootstrap base), run compose.yaml (Redis, two
## nodes, the handoff sink), send a conversation through it, stop it (root, docker, debootstrap, docker-compose)
container:
	scripts/container.sh

clean:
	rm -rf bin
