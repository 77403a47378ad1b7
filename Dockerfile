# bpmcp as a container, built from source: a static binary, the CA
# certificates and nothing else, run as a non-root user.
#   docker build -t bpmcp .
#   docker run -p 8080:8080 -e BETTERPROMPT_API_KEY=bp_... -e BPMCP_AUTH_TOKEN=... bpmcp
# The server listens on all interfaces inside the container (BPMCP_ADDR), so
# set BPMCP_AUTH_TOKEN, or keep the port private. For stdio (a client that
# starts the container): docker run -i --rm ... bpmcp --transport stdio
#
# Without network access to pull golang, build the binary yourself and use
# deploy/container/Containerfile (deploy/container/build.sh), which makes the
# same image from it; CI builds that one with podman.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /bpmcp .

FROM scratch
LABEL io.modelcontextprotocol.server.name="io.github.bpmcp/bpmcp" \
      org.opencontainers.image.title="bpmcp" \
      org.opencontainers.image.description="MCP server for BetterPrompt and BetterWaifu" \
      org.opencontainers.image.source="https://github.com/bpmcp/bpmcp"
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /bpmcp /bpmcp
# nobody's uid: scratch has no /etc/passwd, and the server needs no home.
USER 65532:65532
ENV BPMCP_TRANSPORT=http \
    BPMCP_ADDR=0.0.0.0:8080 \
    BPMCP_STATELESS=true \
    BPMCP_LOG_FORMAT=json
EXPOSE 8080 9090
ENTRYPOINT ["/bpmcp"]
