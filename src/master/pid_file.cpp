#include "master/pid_file.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

#include "log/error_log.hpp"

namespace trident {

Result<bool> PidFile::write(const std::filesystem::path& path, pid_t pid) {
    const std::string text = std::to_string(pid) + "\n";
    const std::string temporary = path.string() + ".tmp";
    const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        return Error{"cannot write pid file " + temporary + ": " + std::strerror(errno)};
    }
    // Again after a short write, so a full disk or the file size limit reports its own
    // errno. Some file systems (NFS) report a full disk only at close().
    int saved = 0;
    bool written = log::write_fully(fd, text, saved) == text.size();
    if (::close(fd) != 0 && written) {
        written = false;
        saved = errno;
    }
    if (!written || ::rename(temporary.c_str(), path.c_str()) != 0) {
        const int why = written ? errno : saved;
        ::unlink(temporary.c_str());
        return Error{"cannot write pid file " + path.string() + ": " + std::strerror(why)};
    }
    path_ = path;
    pid_ = pid;
    return true;
}

void PidFile::remove() noexcept {
    if (path_.empty()) {
        return;
    }
    // Only our own: a newer master may have taken the name over.
    std::ifstream in(path_);
    pid_t recorded = 0;
    if (in >> recorded && recorded == pid_) {
        ::unlink(path_.c_str());
    }
    path_.clear();
}

namespace {

/// The executable's file name, without the " (deleted)" an upgrade leaves behind.
std::string exe_name(const std::filesystem::path& link, std::error_code& ec) {
    std::string target = std::filesystem::read_symlink(link, ec).filename().string();
    if (const auto deleted = target.find(" (deleted)"); deleted != std::string::npos) {
        target.erase(deleted);
    }
    return target;
}

/// argv[0]'s file name from /proc/PID/cmdline; empty when unreadable.
std::string command_name(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline", std::ios::binary);
    std::string argv0;
    std::getline(in, argv0, '\0');
    return std::filesystem::path(argv0).filename().string();
}

pid_t parent_of(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    std::getline(in, line);
    const auto paren = line.rfind(')');
    if (paren == std::string::npos) {
        return 0;
    }
    std::istringstream fields(line.substr(paren + 1));
    std::string state;
    pid_t ppid = 0;
    fields >> state >> ppid;
    return ppid;
}

}  // namespace

PidFileStatus inspect_pid_file(const std::filesystem::path& path) {
    using State = PidFileStatus::State;
    PidFileStatus status;
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) {
        return status;
    }
    std::ifstream in(path);
    long long pid = 0;
    if (!in) {
        return {State::unreadable, 0, "cannot read " + path.string()};
    }
    if (!(in >> pid)) {
        in.clear();
        if (in.peek() == std::ifstream::traits_type::eof()) {
            return status;  // empty: as good as absent
        }
        return {State::unreadable, 0, path.string() + " does not hold a pid"};
    }
    if (pid <= 1 || pid > 0x3fffffff) {
        return {State::stale, pid_t(pid > 0 && pid <= 0x3fffffff ? pid : 0),
                path.string() + " holds no usable pid (" + std::to_string(pid) + ")"};
    }
    status.pid = pid_t(pid);
    if (::kill(status.pid, 0) != 0 && errno == ESRCH) {
        status.state = State::stale;
        status.detail = "pid " + std::to_string(pid) + " is not running";
        return status;
    }
    const std::string self = exe_name("/proc/self/exe", ec);
    std::string other = exe_name("/proc/" + std::to_string(pid) + "/exe", ec);
    if (ec) {
        other = command_name(status.pid);  // another user's process: exe is not ours to read
    }
    if (other.empty() || other != self) {
        status.state = State::stale;
        status.detail = "pid " + std::to_string(pid) + " is " +
                        (other.empty() ? std::string("not trident") : "'" + other + "'") +
                        ", not a trident master";
        return status;
    }
    // A child of a master has the same executable; the pid file never names one, but a pid
    // reused by one must not be taken for the master.
    const pid_t parent = parent_of(status.pid);
    if (parent > 1) {
        std::error_code parent_ec;
        if (exe_name("/proc/" + std::to_string(parent) + "/exe", parent_ec) == self && !parent_ec) {
            status.state = State::stale;
            status.detail = "pid " + std::to_string(pid) + " is a trident child, not a master";
            return status;
        }
    }
    status.state = State::running;
    return status;
}

}  // namespace trident
