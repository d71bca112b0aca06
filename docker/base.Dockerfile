# syntax=docker/dockerfile:1
# The layers all three sagetext images share: Python, torch, the package's dependencies, the
# package, and the train/serve entrypoints. docker/build.sh builds this as
# sagetext-common:<version>; docker/algorithm.Dockerfile adds only the algorithm's name.
#
# BASE_IMAGE default: nvidia/cuda:12.8.1-base-ubuntu24.04. The `-base` flavour carries only
# the CUDA runtime stub, cuda-compat (newer CUDA on older SageMaker drivers) and the
# NVIDIA_* variables that make the NVIDIA container runtime mount the host driver. torch's
# CUDA wheels bring their own cuBLAS/cuDNN/NCCL, so the `-runtime`/`-cudnn` flavours would
# only duplicate ~3 GB. Without a GPU the same image runs on CPU (torch falls back).
# The local test build passes a debootstrap'd Debian image instead (docker/base-local.sh).
ARG BASE_IMAGE=nvidia/cuda:12.8.1-base-ubuntu24.04

# ---- builder: a venv with torch + dependencies (sagemaker-training and sagetext compile C extensions)
FROM ${BASE_IMAGE} AS builder
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        python3 python3-venv python3-dev gcc libc6-dev ca-certificates \
 && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/sagetext
ENV PATH=/opt/sagetext/bin:$PATH PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# PIP_CERT: a CA bundle for networks that intercept TLS (build.sh mounts the host's).
ARG PIP_CERT=""
# torch first, in its own layer: the biggest and the least often changed. TORCH_INDEX_URL is
# an index URL (e.g. https://download.pytorch.org/whl/cu126), a folder of wheels mounted
# into the build (the CPU test build: --volume /opt/wheels:/wheels), or empty for PyPI
# (whose Linux torch is the CUDA build).
ARG TORCH_SPEC="torch==2.13.0"
ARG TORCH_INDEX_URL=""
RUN set -e; case "$TORCH_INDEX_URL" in \
        "") src="" ;; /*) src="--find-links $TORCH_INDEX_URL" ;; \
        *) src="--index-url $TORCH_INDEX_URL" ;; esac; \
    pip install ${PIP_CERT:+--cert "$PIP_CERT"} $src "$TORCH_SPEC"
# The other dependencies, from pyproject.toml alone (a stub package), so that editing the
# source does not reinstall them; with the tensorboard extra, so that training writes event
# files when the job asks for them. sagemaker-training installs its own `train` script; it is
# removed so that `train` on PATH is always ours. The stub's build folder goes too: setuptools
# would otherwise keep its empty __init__.py, newer than the real one copied below.
COPY pyproject.toml /build/
RUN mkdir -p /build/src/sagetext && touch /build/src/sagetext/__init__.py \
 && pip install ${PIP_CERT:+--cert "$PIP_CERT"} "/build[tensorboard]" && pip uninstall -y sagetext \
 && rm -rf /build/src /build/build /build/*.egg-info /opt/sagetext/bin/train /opt/sagetext/bin/serve
# The package itself, as a wheel for the runtime stage.
COPY configs /build/configs
COPY src /build/src
RUN pip wheel ${PIP_CERT:+--cert "$PIP_CERT"} --no-deps -w /dist /build

# ---- runtime: Python + the venv + the package; no compiler, no caches
FROM ${BASE_IMAGE}
RUN if ! command -v python3 >/dev/null; then apt-get update \
      && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 \
      && rm -rf /var/lib/apt/lists/*; fi
COPY --from=builder /opt/sagetext /opt/sagetext
COPY --from=builder /dist /tmp/dist
# The wheel carries the native word2vec engine and the supervised SGD, compiled in the builder
# (gcc there); their build is optional for pip, so the image checks that both are there and load.
RUN /opt/sagetext/bin/pip install --no-cache-dir --no-deps --no-index /tmp/dist/*.whl \
 && rm -rf /tmp/dist \
 && /opt/sagetext/bin/python -c "from sagetext.algorithms.blazingtext.word2vec import native_engine as n; \
assert n.available(), n.IMPORT_ERROR; \
from sagetext.algorithms.blazingtext.supervised import compiled as c; assert c.available(), 'no supervised _sgd'"
# train/serve on PATH: SageMaker runs `docker run IMAGE train` (or serve); the entrypoint
# exec's them so that SIGTERM reaches Python directly.
COPY train serve /usr/local/bin/
COPY docker/sagetext-entrypoint /usr/local/bin/
ENV PATH=/opt/sagetext/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility
# Nothing is put under /opt/ml: SageMaker mounts the job's files there.
WORKDIR /opt/sagetext
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/sagetext-entrypoint"]
CMD ["serve"]
