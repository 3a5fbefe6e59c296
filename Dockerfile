# The Flowledger image: one image, the command picks the role (serve, projector, worker, init).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY schemas ./schemas
COPY streams ./streams
COPY projections ./projections
COPY api ./api
COPY domain ./domain
COPY connectors ./connectors
COPY flowledger ./flowledger
RUN pip install --no-cache-dir . && useradd --create-home flowledger && mkdir /data && chown flowledger /data
USER flowledger
ENTRYPOINT ["flowledger"]
CMD ["serve"]
