# One image for the user-code server, the webserver, the daemon, the schema job and the Celery
# workers (dagster-celery and redis come with the project's dependencies).
FROM python:3.11-slim
WORKDIR /app
# psql: the schema service pipes the platform role's GRANTs to the owner (docker-compose.yml).
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends postgresql-client && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml README.md ./
COPY migration_assets ./migration_assets
COPY sql ./sql
COPY docker ./docker
COPY workspace.yaml dagster.yaml ./
RUN pip install --no-cache-dir -e . \
 && mkdir -p /opt/dagster/home \
 && cp dagster.yaml /opt/dagster/home/dagster.yaml \
 && cp docker/celery.yaml /opt/dagster/celery.yaml
ENV DAGSTER_HOME=/opt/dagster/home
