#include "master/listeners.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace trident {

namespace {

struct SocketAddress {
    sockaddr_storage storage{};
    socklen_t length = 0;
    int family = AF_UNSPEC;
};

SocketAddress make_address(const std::string& host, std::uint16_t port, bool ipv6_any) {
    SocketAddress out;
    if (host.empty()) {
        if (ipv6_any) {
            auto* a = reinterpret_cast<sockaddr_in6*>(&out.storage);
            a->sin6_family = AF_INET6;
            a->sin6_addr = in6addr_any;
            a->sin6_port = htons(port);
            out.length = sizeof *a;
            out.family = AF_INET6;
        } else {
            auto* a = reinterpret_cast<sockaddr_in*>(&out.storage);
            a->sin_family = AF_INET;
            a->sin_addr.s_addr = htonl(INADDR_ANY);
            a->sin_port = htons(port);
            out.length = sizeof *a;
            out.family = AF_INET;
        }
        return out;
    }
    auto* a4 = reinterpret_cast<sockaddr_in*>(&out.storage);
    if (inet_pton(AF_INET, host.c_str(), &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons(port);
        out.length = sizeof *a4;
        out.family = AF_INET;
        return out;
    }
    auto* a6 = reinterpret_cast<sockaddr_in6*>(&out.storage);
    if (inet_pton(AF_INET6, host.c_str(), &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons(port);
        out.length = sizeof *a6;
        out.family = AF_INET6;
    }
    return out;
}

/// Opens one listening socket; returns the fd or -1 with errno set.
int open_listener(const SocketAddress& address, int backlog, bool dual_stack) {
    const int fd = ::socket(address.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }
    const int one = 1;
    const int zero = 0;
    // SO_REUSEADDR lets a restarted server bind while old connections sit in TIME_WAIT.
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (address.family == AF_INET6) {
        ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, dual_stack ? &zero : &one, sizeof one);
    }
    // Accepted sockets inherit TCP_NODELAY from the listening one, which saves every MPM a
    // setsockopt per connection: responses leave whole (one sendmsg, or MSG_MORE before a
    // file), so Nagle's algorithm would only hold back their last segment.
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    // Apache's default AcceptFilter on Linux ("data"): the kernel completes the accept only
    // once the client has sent something, so a connection wakes no process before its
    // request is there to read, and one that never speaks costs no child or thread. After
    // 30 s of silence it is handed over anyway (and its header timeout starts).
    const int defer_seconds = 30;
    ::setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &defer_seconds, sizeof defer_seconds);
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&address.storage), address.length) < 0 ||
        ::listen(fd, backlog) < 0) {
        const int saved = errno;
        ::close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

}  // namespace

Result<std::vector<Listener>> bind_listeners(const std::vector<ListenAddress>& addresses,
                                             int backlog) {
    std::vector<Listener> listeners;
    for (const ListenAddress& entry : addresses) {
        SocketAddress address = make_address(entry.host, entry.port, true);
        if (address.family == AF_UNSPEC) {
            close_listeners(listeners);
            return Error{"cannot bind " + entry.text + ": not a numeric IPv4 or IPv6 address"};
        }
        int fd = open_listener(address, backlog, entry.host.empty());
        if (fd < 0 && entry.host.empty() && errno == EAFNOSUPPORT) {
            fd = open_listener(make_address(entry.host, entry.port, false), backlog, false);
        }
        if (fd < 0) {
            const std::string reason = std::strerror(errno);
            close_listeners(listeners);
            return Error{"cannot bind " + entry.text + ": " + reason};
        }
        listeners.push_back(Listener{fd, entry.text});
    }
    return listeners;
}

void close_listeners(std::vector<Listener>& listeners) noexcept {
    for (Listener& listener : listeners) {
        if (listener.fd >= 0) {
            ::close(listener.fd);
            listener.fd = -1;
        }
    }
    listeners.clear();
}

namespace {

std::string listener_key(const ListenAddress& address) {
    return address.host + "|" + std::to_string(address.port);
}

/// Ends a socket the children share: they hold copies of it, so closing the master's alone
/// would leave it listening, and clients queueing, until the last of them exits, to be
/// reset then. shutdown() takes it out of listening for every holder at once: new clients
/// are refused, and a child waiting to accept on it gets EINVAL (Apache's children close
/// theirs as soon as they are told to stop).
void stop_listening(int fd) noexcept {
    ::shutdown(fd, SHUT_RDWR);
    ::close(fd);
}

}  // namespace

Result<std::vector<Listener>> ListenerRegistry::acquire(const std::vector<ListenAddress>& addresses,
                                                        int backlog) {
    std::vector<Listener> out;
    std::vector<std::string> bound_now;
    for (const ListenAddress& address : addresses) {
        const std::string key = listener_key(address);
        auto existing = std::find_if(entries_.begin(), entries_.end(),
                                     [&](const Entry& entry) { return entry.key == key; });
        if (existing != entries_.end()) {
            out.push_back(Listener{existing->listener.fd, address.text});
            continue;
        }
        auto bound = bind_listeners({address}, backlog);
        if (!bound) {
            // Undo only this call's binds: earlier uncommitted ones belong to the caller.
            for (const std::string& done : bound_now) {
                auto entry = std::find_if(entries_.begin(), entries_.end(),
                                          [&](const Entry& e) { return e.key == done; });
                ::close(entry->listener.fd);
                entries_.erase(entry);
            }
            return bound.error();
        }
        entries_.push_back(Entry{key, bound->front(), false});
        bound_now.push_back(key);
        out.push_back(bound->front());
    }
    return out;
}

std::vector<std::string> ListenerRegistry::commit(const std::vector<Listener>& in_use) {
    std::vector<std::string> closed;
    std::vector<Entry> kept;
    for (Entry& entry : entries_) {
        const bool used = std::any_of(in_use.begin(), in_use.end(),
                                      [&](const Listener& l) { return l.fd == entry.listener.fd; });
        if (used) {
            entry.committed = true;
            kept.push_back(std::move(entry));
        } else {
            stop_listening(entry.listener.fd);
            closed.push_back(entry.listener.name);
        }
    }
    entries_ = std::move(kept);
    return closed;
}

void ListenerRegistry::rollback() noexcept {
    std::erase_if(entries_, [](const Entry& entry) {
        if (!entry.committed) {
            ::close(entry.listener.fd);  // bound since the last fork: no child holds it
        }
        return !entry.committed;
    });
}

void ListenerRegistry::close_all() noexcept {
    for (Entry& entry : entries_) {
        stop_listening(entry.listener.fd);
    }
    entries_.clear();
}

}  // namespace trident
