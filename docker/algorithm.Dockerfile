# A sagetext algorithm image: the shared layers (docker/base.Dockerfile, built by
# docker/build.sh as COMMON_IMAGE) plus the algorithm's name and labels. build.sh builds it
# once per algorithm: --build-arg ALGORITHM=blazingtext|seq2seq|ntm.
#   docker run IMAGE train   # the job under /opt/ml (SageMaker training contract)
#   docker run IMAGE serve   # /ping and /invocations on port 8080
ARG COMMON_IMAGE=localhost/sagetext-common:latest
FROM ${COMMON_IMAGE}
ARG ALGORITHM
ARG VERSION=0.0.0
ARG SOURCE=https://github.com/sagetext/sagetext
RUN case "${ALGORITHM}" in blazingtext|seq2seq|ntm) ;; \
        *) echo "ALGORITHM='${ALGORITHM}': expected blazingtext, seq2seq or ntm (--build-arg ALGORITHM=...)" >&2; \
           exit 2 ;; esac
LABEL org.opencontainers.image.title="sagetext-${ALGORITHM}" \
      org.opencontainers.image.description="Drop-in replacement for the SageMaker built-in ${ALGORITHM} algorithm" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      io.sagetext.algorithm="${ALGORITHM}"
ENV SAGETEXT_ALGORITHM=${ALGORITHM}
