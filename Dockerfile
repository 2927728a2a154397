# syntax=docker/dockerfile:1
# quill serve in a container: a Swift build stage, a stage that fetches the docs page's assets,
# and a slim runtime with only the runtime libraries, run as a non-root user.
#
#   docker build -t quill .
#   docker run -p 8080:8080 -v "$HOME/.cache/quill/models:/models:ro" \
#       -e QUILL_MODEL=/models/SmolLM2-135M-Instruct.Q4_1.gguf quill
#   (or -e QUILL_MODEL=https://.../model.gguf: fetched into /models at start)

FROM swift:6.3-bookworm AS build
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends libopenblas-dev zlib1g-dev libsqlite3-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Package.swift ./
COPY Sources ./Sources
RUN swift build -c release --product quill --static-swift-stdlib \
 && install -D "$(swift build -c release --show-bin-path)/quill" /out/quill

FROM python:3.11-slim-bookworm AS assets
WORKDIR /assets
RUN pip download --no-cache-dir --no-deps drf-spectacular-sidecar==2026.10.1 \
 && python -c "import zipfile,glob; z=zipfile.ZipFile(glob.glob('*.whl')[0]); p='drf_spectacular_sidecar/static/drf_spectacular_sidecar/swagger-ui-dist/'; [open('/assets/'+n,'wb').write(z.read(p+n)) for n in ('swagger-ui-bundle.js','swagger-ui.css','LICENSE')]" \
 && rm -f ./*.whl

FROM debian:bookworm-slim
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends libopenblas0-pthread zlib1g curl ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --create-home --home-dir /home/quill quill \
 && mkdir -p /models && chown quill /models
COPY --from=build /out/quill /usr/local/bin/quill
COPY --from=assets /assets /usr/local/share/quill/swagger-ui
COPY deploy/docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
ENV QUILL_HOST=0.0.0.0 \
    QUILL_PORT=8080 \
    QUILL_CACHE=/home/quill/.cache/quill \
    QUILL_DOCS_ASSETS=/usr/local/share/quill/swagger-ui
USER 10001
EXPOSE 8080
VOLUME ["/models"]
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
  CMD ["/bin/sh", "-c", "curl -fsS http://127.0.0.1:${QUILL_PORT}/health || exit 1"]
ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]
CMD []
