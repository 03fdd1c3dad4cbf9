#include "common/listener_set.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <vector>

#include <spdlog/logger.h>

namespace trident {
namespace {

/// A listening socket on 127.0.0.1, any port; -1 on failure.
int listen_loopback(std::uint16_t& port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&address), length) != 0 ||
        ::listen(fd, 16) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
        return -1;
    }
    port = ntohs(address.sin_port);
    return fd;
}

int connect_loopback(std::uint16_t port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(port);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

TEST(ListenerSet, ASocketTheMasterShutsIsLeftOutAndTheOthersServed) {
    // A reload that drops one of two sockets shuts it down while the old children still
    // wait on both: they must go on accepting on the other until their stop arrives, not
    // end as if stopped (the new generation may not be accepting yet).
    std::uint16_t dropped_port = 0;
    std::uint16_t kept_port = 0;
    const int dropped = listen_loopback(dropped_port);
    const int kept = listen_loopback(kept_port);
    ASSERT_GE(dropped, 0);
    ASSERT_GE(kept, 0);
    const std::vector<Listener> listeners = {{dropped, "dropped"}, {kept, "kept"}};
    ListenerSet set(listeners);
    spdlog::logger log("listener-set-test");
    ASSERT_TRUE(set.ready(log));
    const std::atomic<bool> stop{false};

    ASSERT_EQ(::shutdown(dropped, SHUT_RDWR), 0);
    const int client = connect_loopback(kept_port);
    ASSERT_GE(client, 0);
    const auto accepted = set.accept(stop, log);
    ASSERT_TRUE(accepted) << "stopped accepting when one of two sockets closed";
    ::close(accepted->fd);
    ::close(client);

    // Both shut (a stop): nothing more, at once.
    ASSERT_EQ(::shutdown(kept, SHUT_RDWR), 0);
    EXPECT_FALSE(set.accept(stop, log));
    EXPECT_FALSE(set.accept(stop, log)) << "a second call must not wait either";
    ::close(dropped);
    ::close(kept);
}

TEST(ListenerSet, AcceptErrorsOfOneConnectionAreRetriedAtOnce) {
    for (int error : {ECONNABORTED, EPROTO, ENETDOWN, EHOSTUNREACH, ENETUNREACH, EPERM, EINTR}) {
        EXPECT_TRUE(accept_error_is_transient(error)) << error;
    }
    for (int error : {EMFILE, ENFILE, ENOBUFS, ENOMEM, EINVAL}) {
        EXPECT_FALSE(accept_error_is_transient(error)) << error;
    }
}

}  // namespace
}  // namespace trident
