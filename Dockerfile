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
 && install -s -D target/release/healthimaging-mcp /out/healthimaging-mcp

# Runtime stage: the binary, its two codec libraries, a non-root user.
FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        libopenjph0.9 libcharls2 libstdc++6 ca-certificates \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log \
 && useradd --system --create-home --home-dir /home/imaging --uid 10001 imaging \
 && mkdir -p /data && chown imaging /data
COPY --from=builder /out/healthimaging-mcp /usr/local/bin/healthimaging-mcp
USER imaging
WORKDIR /home/imaging
# The emulator's health endpoint or the MCP endpoint answering (the binary
# checks them itself: no curl in the image).
HEALTHCHECK --interval=5s --timeout=3s --start-period=60s --retries=30 \
    CMD ["healthimaging-mcp", "health"]
ENTRYPOINT ["healthimaging-mcp"]
CMD ["serve", "--transport", "http", "--listen", "0.0.0.0:8000"]
