# mediarouter in a container: built with the transcode stage on Debian 12, run on
# Debian 12 slim with FFmpeg's shared libraries, as a non-root user.
#
#   docker build -t mediarouter .
#   docker run --rm -p 8554:8554 -p 1935:1935 -p 8888:8888 -p 8889:8889 \
#     -p 8189:8189/udp -p 8890:8890/udp -p 9997:9997 mediarouter
#
# The config is /etc/mediarouter/mediarouter.yml (mount a directory there to replace
# it: edits reload in place). NVIDIA GPUs: run with `--gpus all` (NVIDIA Container
# Toolkit); the CUDA driver libraries come from the host, so the image needs none.

FROM rust:1-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libavcodec-dev libavformat-dev libavutil-dev libswscale-dev libswresample-dev \
      libavfilter-dev libavdevice-dev libclang-dev clang pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked --features transcode --bin mediarouter

FROM debian:bookworm-slim AS runtime
# The FFmpeg libraries the build linked against (Debian 12's FFmpeg 5.1), and libsrt,
# which the SRT listener loads at run time.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libavcodec59 libavformat59 libavutil57 libswscale6 libswresample4 \
      libavfilter8 libsrt1.5-openssl ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /var/lib/mediarouter \
      --create-home mediarouter
COPY --from=build /src/target/release/mediarouter /usr/bin/mediarouter
COPY mediarouter.yml /etc/mediarouter/mediarouter.yml
USER 10001:10001
WORKDIR /var/lib/mediarouter
# RTSP, RTP/RTCP, RTMP, HTTP (HLS, HTTP-FLV), WebRTC (HTTP, UDP), SRT, API.
EXPOSE 8554 8000/udp 8001/udp 1935 8888 8889 8189/udp 8890/udp 9997
ENTRYPOINT ["/usr/bin/mediarouter"]
CMD ["/etc/mediarouter/mediarouter.yml"]
