#!/usr/bin/env bash
# Builds the sagetext images: sagetext-common (docker/base.Dockerfile: Python, torch,
# dependencies, package, entrypoint) and one thin image per algorithm on top of it
# (docker/algorithm.Dockerfile with --build-arg ALGORITHM=<algorithm>).
#
#   docker/build.sh                      # all three, for SageMaker (CUDA base, torch from PyPI)
#   docker/build.sh blazingtext          # some of them
#   docker/build.sh --local [ALGO...]    # offline-registry test build: a debootstrap'd Debian
#                                        # base (docker/base-local.sh) + the CPU torch wheel
# Environment: CONTAINER (podman|docker, default podman), IMAGE_PREFIX (default
# localhost/sagetext-), TAG (default: the version in pyproject.toml), BASE_IMAGE,
# TORCH_SPEC, TORCH_INDEX_URL (index URL or wheel folder), WHEEL_DIR (for --local:
# /opt/wheels), CA_BUNDLE (mounted for pip; default the host's).
# Prints the image names, one a line, on the last lines of its output.
set -euo pipefail
cd "$(dirname "$0")/.."

CONTAINER=${CONTAINER:-podman}
IMAGE_PREFIX=${IMAGE_PREFIX:-localhost/sagetext-}
TAG=${TAG:-$(sed -n 's/^version *= *"\(.*\)"/\1/p' pyproject.toml | head -1)}
CA_BUNDLE=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
ALL="blazingtext seq2seq ntm"

args=()      # build arguments for the common image
volumes=()   # folders mounted into its RUN steps (podman; docker build has no --volume)
if [[ ${1:-} == --local ]]; then
    shift
    # The CPU torch wheel reaches the build through a RUN-time volume, which podman/buildah
    # have and `docker build` has not.
    [[ $CONTAINER == docker ]] && { echo "build: --local needs podman (CONTAINER=podman)" >&2; exit 2; }
    docker/base-local.sh
    WHEEL_DIR=${WHEEL_DIR:-/opt/wheels}
    BASE_IMAGE=${BASE_IMAGE:-localhost/sagetext-base:bookworm}
    TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0+cpu}
    TORCH_INDEX_URL=${TORCH_INDEX_URL:-/wheels}
    volumes+=(--volume "$WHEEL_DIR:/wheels:ro")
fi
[[ -n ${BASE_IMAGE:-} ]] && args+=(--build-arg "BASE_IMAGE=$BASE_IMAGE")
[[ -n ${TORCH_SPEC:-} ]] && args+=(--build-arg "TORCH_SPEC=$TORCH_SPEC")
[[ -n ${TORCH_INDEX_URL:-} ]] && args+=(--build-arg "TORCH_INDEX_URL=$TORCH_INDEX_URL")
if [[ -f $CA_BUNDLE && $CONTAINER != docker ]]; then
    volumes+=(--volume "$CA_BUNDLE:/run/host-ca.crt:ro")
    args+=(--build-arg PIP_CERT=/run/host-ca.crt)
fi
ignore=()
[[ $CONTAINER != docker ]] && ignore=(--ignorefile docker/base.Dockerfile.dockerignore)

for algo in ${*:-$ALL}; do
    [[ " $ALL " == *" $algo "* ]] || { echo "build: unknown algorithm '$algo' (expected: $ALL)" >&2; exit 2; }
done

common="${IMAGE_PREFIX}common:$TAG"
start=$SECONDS
echo "build: $common (base ${BASE_IMAGE:-default})"
$CONTAINER build --network host "${ignore[@]}" "${volumes[@]}" "${args[@]}" \
    -f docker/base.Dockerfile -t "$common" .

built=()
empty=$(mktemp -d)
trap 'rmdir "$empty"' EXIT
for algo in ${*:-$ALL}; do
    image="${IMAGE_PREFIX}$algo:$TAG"
    # The context is an empty folder: the image adds no files.
    $CONTAINER build --build-arg "COMMON_IMAGE=$common" --build-arg "ALGORITHM=$algo" --build-arg "VERSION=$TAG" \
        -f docker/algorithm.Dockerfile -t "$image" -t "${IMAGE_PREFIX}$algo:latest" "$empty"
    built+=("$image")
done
echo "build: done in $((SECONDS - start)) s"
printf '%s\n' "${built[@]}"
