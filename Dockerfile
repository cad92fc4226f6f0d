# One image for every role: `tally api`, `tally worker`, or `tally serve` (embedded, SQLite).
FROM python:3.11-slim-bookworm AS build
WORKDIR /src
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/tally
COPY pyproject.toml README.md ./
COPY app ./app
COPY connectors ./connectors
COPY migrations ./migrations
COPY alembic.ini ./
RUN /opt/tally/bin/pip install .

FROM python:3.11-slim-bookworm
RUN useradd --system --create-home --home-dir /var/lib/tally tally
COPY --from=build /opt/tally /opt/tally
COPY alembic.ini /app/alembic.ini
COPY migrations /app/migrations
WORKDIR /app
ENV PATH=/opt/tally/bin:$PATH \
    TALLY_DATA_DIR=/var/lib/tally/data \
    TALLY_LOG_JSON=true
USER tally
VOLUME ["/var/lib/tally/data"]
EXPOSE 8000
HEALTHCHECK CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz')"
CMD ["tally", "serve", "--host", "0.0.0.0", "--port", "8000"]
