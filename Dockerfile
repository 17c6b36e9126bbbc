# syntax=docker/dockerfile:1
# One image for every orderflow process; the command picks the part:
#   orderflow migrate | serve orders|invoices|gateway | worker orders|invoices
#   | relay orders|invoices | token ... | standalone (the default: everything, SQLite)
# ops/compose.yaml runs the whole distributed stack from it.

# --- builder: wheels for orderflow and every dependency, under constraints.txt --------
# Every dependency ships binary wheels for linux/amd64 and linux/arm64, so no compiler is
# needed here either; the stage keeps the source tree and pip's work out of the image.
FROM python:3.11.14-slim-bookworm AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY pyproject.toml setup.cfg README.md constraints.txt ./
COPY orders ./orders
COPY invoices ./invoices
COPY actors ./actors
COPY gateway ./gateway
COPY ops ./ops
RUN pip wheel --no-cache-dir --wheel-dir /wheels -c constraints.txt . \
    && cp constraints.txt /wheels/

# --- runtime: the installed package, a non-root user, nothing else ---------------------
FROM python:3.11.14-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    ORDERFLOW_DATA_DIR=/var/lib/orderflow \
    ORDERFLOW_HOST=0.0.0.0
# A fixed numeric id: orchestrators can check runAsNonRoot, and volumes get a known owner.
RUN groupadd --system --gid 10001 orderflow \
    && useradd --system --uid 10001 --gid orderflow --no-create-home \
        --home-dir /var/lib/orderflow --shell /usr/sbin/nologin orderflow \
    && install -d -o orderflow -g orderflow -m 0755 /var/lib/orderflow
# The wheels are mounted for this one step only, so they add no layer to the image.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links=/wheels \
        -c /wheels/constraints.txt orderflow
WORKDIR /var/lib/orderflow
USER 10001:10001
# HTTP fronts: orders, invoices, gateway; metrics: worker pools, relays (ops/settings.py).
EXPOSE 3333 3334 3000 9191 9192 9301 9302
ENTRYPOINT ["orderflow"]
CMD ["standalone"]
