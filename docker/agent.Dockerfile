# heisen's load agent: heisen itself, run inside the cluster next to the system under test.
# Build from the repository root (the build context is the whole checkout):
#   docker build -f docker/agent.Dockerfile -t heisen/agent:latest .
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /build
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install . && rm -rf /build

# heisen writes its run directories under the working directory.
RUN mkdir /work && chown 65534:65534 /work
WORKDIR /work
ENV HOME=/work
USER 65534:65534

ENTRYPOINT ["heisen"]
CMD ["--help"]
