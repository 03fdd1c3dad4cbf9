#pragma once

// A Connection driven without sockets, as the MPM's driver would drive it: bytes in,
// responses out. Shared by the connection tests.

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "http/connection.hpp"
#include "http/router.hpp"

namespace trident::http {

inline constexpr std::string_view kDate = "Tue, 24 Nov 2026 07:19:31 GMT";

class ConnectionTest : public ::testing::Test {
protected:
    void SetUp() override {
        char tmpl[] = "/tmp/trident-conn-XXXXXX";
        ASSERT_NE(mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
        std::ofstream(dir_ / "index.html") << "<h1>hi</h1>\n";
        std::ofstream(dir_ / "a.txt") << "0123456789";
        config_.document_root = dir_;
        config_.keep_alive.max_requests = 100;
        router_ = std::make_unique<Router>(config_);
    }
    void TearDown() override { std::filesystem::remove_all(dir_); }

    /// Feeds `input` (all at once, or `chunk` bytes at a time) and collects every response
    /// the connection produces, as the driver would.
    struct Transcript {
        std::vector<std::string> heads;
        std::vector<std::string> bodies;
        bool closed = false;
        std::size_t sent = 0;  ///< input bytes handed to the connection when it settled
    };
    Transcript drive(Connection& conn, std::string_view input, std::size_t chunk = 0,
                     bool eof = true) {
        Transcript t;
        std::size_t pos = 0;
        for (int guard = 0; guard < 100000; ++guard) {
            const Action action = conn.next(kDate);
            if (action == Action::close) {
                t.closed = true;
                t.sent = pos;
                return t;
            }
            if (action == Action::write) {
                t.heads.push_back(conn.output().head);
                if (!conn.output().interim) {
                    // What the access log's %X reads must be what the head says.
                    EXPECT_EQ(
                        conn.output().closes,
                        conn.output().head.find("\r\nConnection: close\r\n") != std::string::npos)
                        << conn.output().head;
                }
                std::string body(conn.output().body);
                if (const FileBody* file = conn.output().file) {
                    body.resize(file->length);
                    EXPECT_EQ(pread(file->fd.get(), body.data(), body.size(), off_t(file->offset)),
                              ssize_t(body.size()));
                }
                t.bodies.push_back(body);
                conn.output_sent();
                continue;
            }
            if (pos == input.size()) {
                if (!eof) {
                    t.sent = pos;
                    return t;
                }
                conn.on_peer_eof();
                continue;
            }
            const std::size_t n =
                chunk == 0 ? input.size() - pos : std::min(chunk, input.size() - pos);
            auto space = conn.input_space(n);
            std::copy_n(input.data() + pos, n, space.data());
            conn.commit_input(n);
            pos += n;
        }
        ADD_FAILURE() << "connection did not settle";
        return t;
    }

    std::filesystem::path dir_;
    Config config_;
    std::unique_ptr<Router> router_;
};

}  // namespace trident::http
