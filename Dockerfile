# The worker and the API, one image (docker-compose.yml runs it twice with different commands).
# Dependencies come from requirements.lock, the exact versions the test suite ran with.
FROM python:3.11.10-slim-bookworm

# UVICORN_TIMEOUT_KEEP_ALIVE: the API keeps an idle connection 75 s, longer than clients and load
# balancers keep theirs (launcher.py says why).
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    WEBHOOKS_DATA_DIR=/data \
    UVICORN_TIMEOUT_KEEP_ALIVE=75

RUN groupadd --system --gid 10001 webhooks \
    && useradd --system --uid 10001 --gid webhooks --home-dir /app --shell /usr/sbin/nologin webhooks \
    && mkdir -p /app /data \
    && chown webhooks:webhooks /data

WORKDIR /app

# Dependencies first, so that a code change reuses this layer.
COPY requirements.lock ./
RUN pip install --no-deps -r requirements.lock

COPY pyproject.toml README.md ./
COPY api ./api
COPY activities ./activities
COPY cli ./cli
COPY core ./core
COPY domain ./domain
COPY history ./history
COPY service ./service
COPY store ./store
COPY workflows ./workflows
COPY worker.py ./
COPY launcher.py ./
COPY bootstrap.py ./
RUN pip install --no-deps .

USER webhooks

EXPOSE 8000 9464
# The API's health: Temporal answers and a worker polls the task queue. The worker's service in
# docker-compose.yml overrides this with its metrics endpoint.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status != 200)"]

CMD ["python", "-m", "api", "--host", "0.0.0.0", "--port", "8000", "--log-level", "warning"]
