# syntax=docker/dockerfile:1
# Multi-stage build: compile in the Rust image, ship only the binary and config/ on a slim base,
# running as an unprivileged user. rustls is used throughout, so no OpenSSL is needed.
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p revokd \
 && install -D -m 0755 target/release/revokd /out/revokd

FROM debian:bookworm-slim
# ca-certificates is deliberately unpinned: it must track the distribution's security updates.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/revokd --create-home revokd \
 && chmod 0700 /var/lib/revokd
COPY --from=build /out/revokd /usr/local/bin/revokd
COPY config/ /etc/revokd/
USER 10001:10001
ENV REVOKD_LOG_FORMAT=json \
    REVOKD__STORE__PATH=/var/lib/revokd/audit.db
VOLUME ["/var/lib/revokd"]
# Mount the client secret (e.g. a Kubernetes secret) at /etc/revokd/secret/client-secret and set
# auth.client_secret_file to that path in /etc/revokd/revokd.yaml.
ENTRYPOINT ["/usr/local/bin/revokd"]
CMD ["run", "--config", "/etc/revokd/revokd.yaml"]
