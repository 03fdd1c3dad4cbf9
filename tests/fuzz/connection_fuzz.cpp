// libFuzzer target: the whole HTTP core fed a byte stream, as a client would send it:
// pipelined requests, bodies (Content-Length and chunked), garbage, delivered in pieces. It
// must never crash, loop, produce a response without a status line, or more than one
// 100 (Continue) for a request.

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string_view>

#include "http/connection.hpp"
#include "http/router.hpp"

namespace {

struct Site {
    Site() {
        char tmpl[] = "/tmp/trident-fuzz-XXXXXX";
        if (mkdtemp(tmpl) == nullptr) {
            std::abort();
        }
        root = tmpl;
        std::filesystem::create_directory(root / "dir");
        std::ofstream(root / "index.html") << "<h1>fuzz</h1>\n";
        std::ofstream(root / "dir" / "a.txt") << "0123456789";
        config.document_root = root;
        config.limits = {256, 16, 128, 4096};
        router = std::make_unique<trident::Router>(config);
    }
    ~Site() { std::filesystem::remove_all(root); }

    std::filesystem::path root;
    trident::Config config;
    std::unique_ptr<trident::Router> router;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static Site site;
    using trident::http::Action;
    trident::http::Connection conn(*site.router, site.config);
    constexpr std::string_view kDate = "Tue, 24 Nov 2026 07:19:31 GMT";
    // The first byte picks the piece size, so the same stream is tried split many ways.
    const std::size_t piece = size == 0 ? 1 : 1 + data[0] % 64;
    std::size_t pos = 0;
    int interims = 0;  // 100 (Continue) responses since the last final one
    for (int step = 0; step < 100000; ++step) {
        const Action action = conn.next(kDate);
        if (action == Action::close) {
            return 0;
        }
        if (action == Action::write) {
            if (!conn.output().head.starts_with("HTTP/1.1 ")) {
                std::abort();
            }
            // At most one interim response per request, and it is exactly "100 Continue".
            if (conn.output().interim) {
                if (++interims > 1 || conn.output().head != "HTTP/1.1 100 Continue\r\n\r\n") {
                    std::abort();
                }
            } else {
                interims = 0;
            }
            conn.output_sent();
            continue;
        }
        if (pos == size) {
            conn.on_peer_eof();
            continue;
        }
        const std::size_t n = std::min(piece, size - pos);
        auto space = conn.input_space(n);
        std::copy_n(data + pos, n, space.data());
        conn.commit_input(n);
        pos += n;
    }
    std::abort();  // the connection never settled: a loop
}
