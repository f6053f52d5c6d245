# The stadtpuls hub: one image for `stadtpuls migrate | ingest | api | devices | simulate` (see docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    STADTPULS_DATA_DIR=/var/lib/stadtpuls \
    STADTPULS_SPOOL_DIR=/var/lib/stadtpuls/spool

WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY stadtpuls ./stadtpuls
COPY ingest ./ingest
COPY api ./api
COPY dashboards ./dashboards
COPY simulators ./simulators
RUN pip install . && cd / && rm -rf /src

# An unprivileged user owning only its state directory (spool, demo fleet); named volumes mounted there inherit it.
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/stadtpuls --shell /usr/sbin/nologin stadtpuls \
    && mkdir -p /var/lib/stadtpuls/spool /var/lib/stadtpuls/fleet \
    && chown -R stadtpuls:stadtpuls /var/lib/stadtpuls
USER stadtpuls:stadtpuls
WORKDIR /var/lib/stadtpuls

EXPOSE 8000 9108
ENTRYPOINT ["stadtpuls"]
CMD ["--help"]
