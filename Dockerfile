# bpmcp as a container: a static binary on a minimal, non-root base.
#   docker build -t bpmcp .
#   docker run -p 8080:8080 -e BETTERPROMPT_API_KEY=bp_... bpmcp
# The server listens on all interfaces inside the container (BPMCP_ADDR), so
# set BPMCP_AUTH_TOKEN, or keep the port private.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /bpmcp .

FROM gcr.io/distroless/static-debian12:nonroot
LABEL io.modelcontextprotocol.server.name="io.github.bpmcp/bpmcp" \
      org.opencontainers.image.title="bpmcp" \
      org.opencontainers.image.description="MCP server for BetterPrompt and BetterWaifu"
COPY --from=build /bpmcp /bpmcp
USER nonroot:nonroot
ENV BPMCP_TRANSPORT=http \
    BPMCP_ADDR=0.0.0.0:8080 \
    BPMCP_STATELESS=true \
    BPMCP_LOG_FORMAT=json
EXPOSE 8080 9090
ENTRYPOINT ["/bpmcp"]
