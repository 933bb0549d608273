# syntax=docker/dockerfile:1
# kefu's container image: the kefu binary and the ONNX Runtime library on Debian bookworm,
# serving 0.0.0.0:8080 as uid 10001 with its data in the volume /var/lib/kefu. Serving a
# non-loopback address needs API keys: mount a keys file at /etc/kefu/keys.yaml (KEFU_KEYS).
#
# From source (BuildKit, with registry access):
#   docker build -t kefu .
#   docker run -p 8080:8080 -v "$PWD/deploy/keys.yaml:/etc/kefu/keys.yaml:ro" kefu
# Without a registry (here): scripts/container.sh builds a Debian base with debootstrap,
# `make build` the binary on this machine, then `docker build --target prebuilt`.

ARG BASE_IMAGE=debian:bookworm-slim
ARG GO_IMAGE=golang:1.26-bookworm

# What every kefu image has: a user, its data volume, the environment serve reads.
FROM ${BASE_IMAGE} AS runtime
RUN (command -v update-ca-certificates >/dev/null && dpkg -s libstdc++6 >/dev/null 2>&1 \
     || (apt-get update && apt-get install -y --no-install-recommends ca-certificates libstdc++6 && rm -rf /var/lib/apt/lists/*)) \
 && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin kefu \
 && mkdir -p /var/lib/kefu /etc/kefu && chown 10001:10001 /var/lib/kefu
ENV KEFU_ORT_LIB=/usr/local/lib/kefu/libonnxruntime.so.1 \
    KEFU_ADDR=0.0.0.0:8080 \
    KEFU_KEYS=/etc/kefu/keys.yaml \
    KEFU_DATA_DIR=/var/lib/kefu
VOLUME /var/lib/kefu
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/kefu"]
CMD ["serve"]

# The binary and library built on this machine (make build; scripts/ort.sh).
FROM runtime AS prebuilt
COPY bin/kefu /usr/local/bin/kefu
COPY third_party/onnxruntime/libonnxruntime.so.1 /usr/local/lib/kefu/libonnxruntime.so.1

# From source: cgo build; scripts/ort.sh fetches onnxruntime-node@1.24.1 with `npm pack` and
# checks the library's sha256.
FROM ${GO_IMAGE} AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends npm ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN scripts/ort.sh >/dev/null \
 && CGO_ENABLED=1 go build -trimpath -ldflags "-s -w -X main.version=docker" -o /out/kefu ./cmd/kefu \
 && cp third_party/onnxruntime/libonnxruntime.so.1 /out/

FROM runtime
COPY --from=build /out/kefu /usr/local/bin/kefu
COPY --from=build /out/libonnxruntime.so.1 /usr/local/lib/kefu/libonnxruntime.so.1
