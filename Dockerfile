# healthimaging-mcp: the MCP server and the emulator, in one small image.
#
#   docker build -t healthimaging-mcp .
#   docker compose up            # the emulator with the demo set, and MCP over HTTP
#
# Build stage: the workspace in release mode, against Debian's OpenJPH and
# CharLS (the same packages the runtime stage installs).
FROM rust:1.95-slim-bookworm AS builder
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        g++ pkg-config libopenjph-dev libcharls-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release -p healthimaging-mcp \
 && install -D target/release/healthimaging-mcp /out/healthimaging-mcp

# Runtime stage: the binary, its two codec libraries, a non-root user.
FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        libopenjph0.9 libcharls2 libstdc++6 curl ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --create-home --home-dir /home/imaging --uid 10001 imaging \
 && mkdir -p /data && chown imaging /data
COPY --from=builder /out/healthimaging-mcp /usr/local/bin/healthimaging-mcp
USER imaging
WORKDIR /home/imaging
# The emulator's health endpoint, or, for `serve --transport http`, the MCP
# endpoint answering a request without a session (400 means it is up).
HEALTHCHECK --interval=5s --timeout=3s --start-period=60s --retries=30 \
    CMD curl -fsS http://127.0.0.1:4566/_emulator/health >/dev/null \
        || [ "$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8000/mcp)" != "000" ]
ENTRYPOINT ["healthimaging-mcp"]
CMD ["serve", "--transport", "http", "--listen", "0.0.0.0:8000"]
