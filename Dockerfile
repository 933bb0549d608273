# syntax=docker/dockerfile:1
# kefu: build with cgo, fetch and verify the ONNX Runtime library, run as a non-root user.
#   docker build -t kefu .
#   docker run -p 8080:8080 kefu            # serves the embedded demo bot and model

FROM golang:1.26-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends npm ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# scripts/ort.sh fetches onnxruntime-node@1.24.1 with `npm pack` and checks the library's sha256.
RUN scripts/ort.sh >/dev/null \
 && CGO_ENABLED=1 go build -trimpath -ldflags "-s -w -X main.version=docker" -o /out/kefu ./cmd/kefu \
 && cp third_party/onnxruntime/libonnxruntime.so.1 /out/

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libstdc++6 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin kefu
COPY --from=build /out/libonnxruntime.so.1 /usr/local/lib/kefu/libonnxruntime.so.1
COPY --from=build /out/kefu /usr/local/bin/kefu
ENV KEFU_ORT_LIB=/usr/local/lib/kefu/libonnxruntime.so.1 \
    KEFU_ADDR=0.0.0.0:8080
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/kefu"]
CMD ["serve"]
