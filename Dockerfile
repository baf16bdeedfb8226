# syntax=docker/dockerfile:1
# The qwen-operator images, one target per binary:
#
#   docker build --target manager --build-arg VERSION=0.1.0 -t ghcr.io/qwenops/qwen-operator:0.1.0 .
#   docker build --target gateway --build-arg VERSION=0.1.0 -t ghcr.io/qwenops/qwen-gateway:0.1.0 .
#
# A Go build stage, then a static, shell-less runtime that runs as nonroot (65532:65532). The
# release workflow (.github/workflows/release.yaml) builds both for amd64 and arm64. Offline,
# `make images` builds the same images (same names, entrypoints and user) from `make build`
# binaries without any registry (internal/imagebuild).
ARG GO_VERSION=1.26

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
ARG TARGETOS=linux
ARG TARGETARCH
ARG VERSION=0.1.0
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY api/ api/
COPY cmd/ cmd/
COPY controllers/ controllers/
COPY internal/ internal/
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} go build -trimpath \
      -ldflags "-s -w -X github.com/qwenops/qwen-operator/internal/buildinfo.Version=${VERSION}" \
      -o /out/ ./cmd/manager ./cmd/gateway

FROM gcr.io/distroless/static-debian12:nonroot AS manager
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="qwen-operator manager" \
      org.opencontainers.image.source="https://github.com/qwenops/qwen-operator" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=build /out/manager /manager
USER 65532:65532
ENTRYPOINT ["/manager"]

FROM gcr.io/distroless/static-debian12:nonroot AS gateway
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="qwen-operator gateway" \
      org.opencontainers.image.source="https://github.com/qwenops/qwen-operator" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=build /out/gateway /gateway
USER 65532:65532
ENTRYPOINT ["/gateway"]
