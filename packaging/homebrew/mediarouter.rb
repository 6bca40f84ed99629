# Homebrew formula for mediarouter. scripts/package.sh writes a copy with the source
# tarball's real sha256 (and its URL) into target/packages/; this file is that
# template, and the lines it rewrites are `url` and `sha256`.
class Mediarouter < Formula
  desc "Live media router: RTSP, RTMP, HLS and HTTP-FLV by path, one YAML file"
  homepage "https://github.com/mediarouter/mediarouter"
  url "https://github.com/mediarouter/mediarouter/releases/download/v0.1.0/mediarouter-0.1.0.tar.gz"
  sha256 "0000000000000000000000000000000000000000000000000000000000000000"
  license any_of: ["MIT", "Apache-2.0"]
  head "https://github.com/mediarouter/mediarouter.git", branch: "main"

  depends_on "llvm" => :build # libclang, for ffmpeg-next's bindings
  depends_on "pkgconf" => :build
  depends_on "rust" => :build
  depends_on "ffmpeg"
  depends_on "srt" # libsrt, loaded at run time by the SRT listener

  def install
    ENV["LIBCLANG_PATH"] = Formula["llvm"].opt_lib.to_s
    system "cargo", "install", "--locked", "--features", "transcode", "--bin", "mediarouter",
           *std_cargo_args
    (etc/"mediarouter").install "mediarouter.yml"
    man1.install "packaging/mediarouter.1"
  end

  def caveats
    <<~EOS
      The configuration is #{etc}/mediarouter/mediarouter.yml; edits apply while running.
      Streams are served on :8554 (RTSP), :1935 (RTMP) and :8888 (HLS, HTTP-FLV, player).
    EOS
  end

  service do
    run [opt_bin/"mediarouter", etc/"mediarouter/mediarouter.yml"]
    keep_alive true
    working_dir var
    log_path var/"log/mediarouter.log"
    error_log_path var/"log/mediarouter.log"
  end

  test do
    assert_match "mediarouter #{version}", shell_output("#{bin}/mediarouter --version")
    assert_match "transcode: ffmpeg", shell_output("#{bin}/mediarouter --version")
    assert_match ": ok", shell_output("#{bin}/mediarouter --check #{etc}/mediarouter/mediarouter.yml")
  end
end
