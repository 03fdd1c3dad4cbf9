// The test clients: a raw-socket HTTP/1.1 client with poll-bounded reads, and commands
// (trident -t, curl) run with a bounded wait.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <thread>

#include "harness.hpp"

namespace trident::test {

namespace {

using Clock = std::chrono::steady_clock;

/// A response larger than this is a runaway, not a test file.
constexpr std::size_t kMaxResponse = 64u << 20;
constexpr std::size_t kMaxHead = 1u << 20;

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) ==
                      std::tolower(static_cast<unsigned char>(y));
           });
}

std::string_view trim(std::string_view text) {
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) {
        text.remove_prefix(1);
    }
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) {
        text.remove_suffix(1);
    }
    return text;
}

/// The first bytes of `bytes`, printable, for failure messages.
std::string excerpt(std::string_view bytes, std::size_t limit = 200) {
    std::string out;
    for (char c : bytes.substr(0, limit)) {
        if (c == '\r') {
            out += "\\r";
        } else if (c == '\n') {
            out += "\\n";
        } else if (std::isprint(static_cast<unsigned char>(c))) {
            out += c;
        } else {
            out += '.';
        }
    }
    return bytes.size() > limit ? out + "..." : out;
}

}  // namespace

// --- responses ------------------------------------------------------------------------------

std::optional<std::string> HttpResponse::header(std::string_view name) const {
    for (const auto& [field, value] : headers) {
        if (iequals(field, name)) {
            return value;
        }
    }
    return std::nullopt;
}

std::size_t HttpResponse::header_count(std::string_view name) const {
    return static_cast<std::size_t>(
        std::count_if(headers.begin(), headers.end(),
                      [&](const auto& field) { return iequals(field.first, name); }));
}

std::string HttpResponse::head_text() const {
    std::string text = version + " " + std::to_string(status) + " " + reason + "\n";
    for (const auto& [field, value] : headers) {
        text += field + ": " + value + "\n";
    }
    return text;
}

// --- the raw client -------------------------------------------------------------------------

RawClient::~RawClient() {
    close();
}

bool RawClient::shutdown_write() {
    if (fd_ < 0 || ::shutdown(fd_, SHUT_WR) != 0) {
        error_ = std::string("shutdown: ") + std::strerror(errno);
        return false;
    }
    return true;
}

void RawClient::close() {
    if (fd_ >= 0) {
        ::close(fd_);
        fd_ = -1;
    }
    buffer_.clear();
}

bool RawClient::connect(std::uint16_t port, const std::string& host) {
    close();
    sockaddr_storage storage{};
    socklen_t length = 0;
    auto* v4 = reinterpret_cast<sockaddr_in*>(&storage);
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&storage);
    if (::inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        length = sizeof *v4;
    } else if (::inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        length = sizeof *v6;
    } else {
        error_ = "not a numeric address: " + host;
        return false;
    }
    fd_ = ::socket(storage.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) {
        error_ = std::string("socket: ") + std::strerror(errno);
        return false;
    }
    // Sends are bounded too: a server that stops reading cannot hang the test.
    timeval send_timeout{static_cast<time_t>(kIoTimeout.count() / 1000), 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &send_timeout, sizeof send_timeout);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&storage), length) < 0) {
        error_ = "connect to " + host + ":" + std::to_string(port) + ": " + std::strerror(errno);
        close();
        return false;
    }
    return true;
}

bool RawClient::send(std::string_view bytes) {
    while (!bytes.empty()) {
        const ssize_t sent = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
        if (sent < 0 && errno == EINTR) {
            continue;
        }
        if (sent <= 0) {
            error_ = std::string("send: ") + std::strerror(errno) + " with " +
                     std::to_string(bytes.size()) + " bytes unsent";
            return false;
        }
        bytes.remove_prefix(static_cast<std::size_t>(sent));
    }
    return true;
}

RawClient::Fill RawClient::fill(Clock::time_point deadline) {
    if (fd_ < 0) {
        error_ = "not connected";
        return Fill::failed;
    }
    for (int attempt = 0; attempt < 1000; ++attempt) {
        const auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now()).count();
        if (left <= 0) {
            return Fill::timeout;
        }
        pollfd entry{fd_, POLLIN, 0};
        const int ready = ::poll(&entry, 1, static_cast<int>(left));
        if (ready < 0 && errno == EINTR) {
            continue;
        }
        if (ready == 0) {
            return Fill::timeout;
        }
        char chunk[65536];
        const ssize_t got = ::recv(fd_, chunk, sizeof chunk, 0);
        if (got > 0) {
            buffer_.append(chunk, static_cast<std::size_t>(got));
            return Fill::data;
        }
        if (got == 0 || errno == ECONNRESET) {
            return Fill::closed;
        }
        if (errno != EINTR && errno != EAGAIN) {
            error_ = std::string("recv: ") + std::strerror(errno);
            return Fill::failed;
        }
    }
    return Fill::failed;
}

bool RawClient::read_until(std::size_t size, Clock::time_point deadline) {
    while (buffer_.size() < size) {
        const Fill result = fill(deadline);
        if (result != Fill::data) {
            error_ = "wanted " + std::to_string(size) + " bytes, have " +
                     std::to_string(buffer_.size()) + " (" +
                     (result == Fill::timeout ? "timed out" : "connection closed") + ")";
            return false;
        }
    }
    return true;
}

std::optional<HttpResponse> RawClient::read_response(bool head_only, Millis timeout) {
    const auto deadline = Clock::now() + timeout;
    std::size_t head_end;
    while ((head_end = buffer_.find("\r\n\r\n")) == std::string::npos) {
        if (buffer_.size() > kMaxHead) {
            error_ = "response head longer than 1 MiB";
            return std::nullopt;
        }
        const Fill result = fill(deadline);
        if (result != Fill::data) {
            error_ = std::string(result == Fill::timeout ? "timed out" : "connection closed") +
                     " before a full response head; got " + std::to_string(buffer_.size()) +
                     " bytes: \"" + excerpt(buffer_) + "\"";
            return std::nullopt;
        }
    }
    HttpResponse response;
    std::string_view head(buffer_.data(), head_end);
    const auto line_end = head.find("\r\n");
    const std::string_view status_line = head.substr(0, line_end);
    // "HTTP/1.1 200 OK": version SP 3DIGIT SP reason (RFC 9112 §4)
    if (status_line.size() < 12 || !status_line.starts_with("HTTP/") || status_line[8] != ' ' ||
        !std::all_of(status_line.begin() + 9, status_line.begin() + 12,
                     [](char c) { return std::isdigit(static_cast<unsigned char>(c)); })) {
        error_ = "malformed status line: \"" + excerpt(status_line) + "\"";
        return std::nullopt;
    }
    response.version = std::string(status_line.substr(0, 8));
    response.status = std::stoi(std::string(status_line.substr(9, 3)));
    response.reason =
        std::string(trim(status_line.substr(std::min<std::size_t>(12, status_line.size()))));
    std::string_view fields = line_end == std::string_view::npos ? "" : head.substr(line_end + 2);
    while (!fields.empty()) {
        const auto end = fields.find("\r\n");
        const std::string_view line = fields.substr(0, end);
        const auto colon = line.find(':');
        if (colon == std::string_view::npos || colon == 0) {
            error_ = "malformed field line: \"" + excerpt(line) + "\"";
            return std::nullopt;
        }
        response.headers.emplace_back(std::string(line.substr(0, colon)),
                                      std::string(trim(line.substr(colon + 1))));
        fields = end == std::string_view::npos ? "" : fields.substr(end + 2);
    }
    buffer_.erase(0, head_end + 4);

    // RFC 9112 §6.3: no body after HEAD, 1xx, 204 and 304.
    if (head_only || response.status / 100 == 1 || response.status == 204 ||
        response.status == 304) {
        return response;
    }
    const auto transfer_encoding = response.header("Transfer-Encoding");
    const auto content_length = response.header("Content-Length");
    if (transfer_encoding && transfer_encoding->find("chunked") != std::string::npos) {
        for (int chunks = 0; chunks < 100000; ++chunks) {
            std::size_t size_end;
            while ((size_end = buffer_.find("\r\n")) == std::string::npos) {
                if (!read_until(buffer_.size() + 1, deadline)) {
                    return std::nullopt;
                }
            }
            const std::size_t size = std::stoul(buffer_.substr(0, size_end), nullptr, 16);
            if (size == 0) {
                // No trailers expected: the last chunk is followed by an empty line.
                if (!read_until(size_end + 4, deadline)) {
                    return std::nullopt;
                }
                buffer_.erase(0, size_end + 4);
                return response;
            }
            if (response.body.size() + size > kMaxResponse ||
                !read_until(size_end + 2 + size + 2, deadline)) {
                return std::nullopt;
            }
            response.body.append(buffer_, size_end + 2, size);
            buffer_.erase(0, size_end + 2 + size + 2);
        }
        error_ = "too many chunks";
        return std::nullopt;
    }
    if (content_length) {
        const std::size_t size = std::stoull(*content_length);
        if (size > kMaxResponse) {
            error_ = "Content-Length " + *content_length + " too large for a test";
            return std::nullopt;
        }
        if (!read_until(size, deadline)) {
            error_ = "body of " + response.head_text() + ": " + error_;
            return std::nullopt;
        }
        response.body = buffer_.substr(0, size);
        buffer_.erase(0, size);
        return response;
    }
    // Neither: the body runs to the close (RFC 9112 §6.3 ¶8).
    for (;;) {
        const Fill result = fill(deadline);
        if (result == Fill::closed) {
            break;
        }
        if (result != Fill::data || buffer_.size() > kMaxResponse) {
            error_ = "close-delimited body did not end";
            return std::nullopt;
        }
    }
    response.body = std::move(buffer_);
    response.closed_after = true;
    buffer_.clear();
    return response;
}

std::vector<HttpResponse> RawClient::read_responses(std::size_t count, Millis timeout) {
    std::vector<HttpResponse> responses;
    while (responses.size() < count) {
        auto response = read_response(false, timeout);
        if (!response) {
            error_ = "response " + std::to_string(responses.size() + 1) + " of " +
                     std::to_string(count) + ": " + error_;
            break;
        }
        responses.push_back(std::move(*response));
    }
    return responses;
}

bool RawClient::wait_closed(Millis timeout) {
    if (!buffer_.empty()) {
        error_ = "unread bytes before the close: \"" + excerpt(buffer_) + "\"";
        return false;
    }
    const auto deadline = Clock::now() + timeout;
    switch (fill(deadline)) {
        case Fill::closed:
            return true;
        case Fill::timeout:
            error_ = "connection still open after " + std::to_string(timeout.count()) + " ms";
            return false;
        case Fill::data:
            error_ = "server sent more: \"" + excerpt(buffer_) + "\"";
            return false;
        case Fill::failed:
            return false;
    }
    return false;
}

std::string make_request(std::string_view method, std::string_view target,
                         std::string_view extra_fields) {
    std::string request;
    request.append(method).append(" ").append(target).append(" HTTP/1.1\r\n");
    request.append("Host: localhost\r\n").append(extra_fields).append("\r\n");
    return request;
}

StalledReader::StalledReader(std::uint16_t port, std::string_view target) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int small = 4096;
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
    if (connected_ && !target.empty()) {
        connected_ = send(make_request("GET", target));
    }
}

StalledReader::~StalledReader() {
    ::close(fd_);
}

bool StalledReader::send(std::string_view bytes) {
    return ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) == ssize_t(bytes.size());
}

std::string StalledReader::read_all(std::size_t total, Millis timeout) {
    std::string received;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    char buffer[65536];
    while (received.size() < total && std::chrono::steady_clock::now() < deadline) {
        pollfd pfd{fd_, POLLIN, 0};
        if (::poll(&pfd, 1, 200) <= 0) {
            continue;
        }
        const ssize_t n = ::recv(fd_, buffer, sizeof buffer, 0);
        if (n <= 0) {
            break;
        }
        received.append(buffer, std::size_t(n));
    }
    return received;
}

std::string write_large_file(const Site& site) {
    std::string large(4 << 20, '\0');
    for (std::size_t i = 0; i < large.size(); ++i) {
        large[i] = char('a' + (i * 7 + i / 4096) % 26);
    }
    write_file(site.root / "large.bin", large);
    return large;
}

std::optional<HttpResponse> exchange(std::uint16_t port, std::string_view request,
                                     std::string* error, bool head_only, const std::string& host) {
    RawClient client;
    std::optional<HttpResponse> response;
    if (client.connect(port, host) && client.send(request)) {
        response = client.read_response(head_only);
    }
    if (!response && error != nullptr) {
        *error = client.error();
    }
    return response;
}

// --- commands -------------------------------------------------------------------------------

bool CommandResult::ok() const {
    return wait_status >= 0 && WIFEXITED(wait_status) && WEXITSTATUS(wait_status) == 0;
}

int CommandResult::exit_code() const {
    return wait_status >= 0 && WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : -1;
}

CommandResult run_command(const std::vector<std::string>& argv, const fs::path& scratch,
                          Millis timeout) {
    static std::atomic<int> counter{0};
    const std::string stem = (scratch / ("command-" + std::to_string(++counter))).string();
    const std::string out_path = stem + ".out";
    const std::string err_path = stem + ".err";
    std::vector<char*> args;
    for (const std::string& arg : argv) {
        args.push_back(const_cast<char*>(arg.c_str()));
    }
    args.push_back(nullptr);

    CommandResult result;
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0) {
        result.err = std::string("fork: ") + std::strerror(errno);
        return result;
    }
    if (pid == 0) {
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (::getppid() != parent) {
            ::_exit(126);
        }
        const int in = ::open("/dev/null", O_RDONLY);
        const int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        const int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (in < 0 || out < 0 || err < 0) {
            ::_exit(126);
        }
        ::dup2(in, STDIN_FILENO);
        ::dup2(out, STDOUT_FILENO);
        ::dup2(err, STDERR_FILENO);
        ::execvp(args[0], args.data());
        ::_exit(127);
    }
    const auto deadline = Clock::now() + timeout;
    bool done = false;
    while (!done && Clock::now() < deadline) {
        int status = 0;
        if (::waitpid(pid, &status, WNOHANG) == pid) {
            result.wait_status = status;
            done = true;
        } else {
            std::this_thread::sleep_for(Millis(5));
        }
    }
    if (!done) {
        ::kill(pid, SIGKILL);
        int status = 0;
        ::waitpid(pid, &status, 0);  // SIGKILL cannot be ignored: this returns
    }
    result.out = read_file(out_path);
    result.err = read_file(err_path);
    if (!done) {
        result.err +=
            "\n[harness: " + argv[0] + " killed after " + std::to_string(timeout.count()) + " ms]";
    }
    return result;
}

CurlResult run_curl(const std::vector<std::string>& args, const std::string& url,
                    const fs::path& scratch) {
    static std::atomic<int> counter{0};
    const fs::path body_file = scratch / ("curl-" + std::to_string(++counter) + ".body");
    std::vector<std::string> argv = {"curl", "-sS", "--noproxy",        "*",  "--max-time",
                                     "10",   "-o",  body_file.string(), "-w", "%{http_code}"};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.push_back(url);
    CurlResult result;
    result.command = run_command(argv, scratch, Millis(15000));
    const std::string& code = result.command.out;
    if (!code.empty() && std::all_of(code.begin(), code.end(), [](char c) {
            return std::isdigit(static_cast<unsigned char>(c));
        })) {
        result.http_code = std::stoi(code);
    }
    result.body = read_file(body_file);
    return result;
}

}  // namespace trident::test
