#include "master/pid_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <string>

namespace trident {

Result<bool> PidFile::write(const std::filesystem::path& path, pid_t pid) {
    const std::string text = std::to_string(pid) + "\n";
    const std::string temporary = path.string() + ".tmp";
    const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        return Error{"cannot write pid file " + temporary + ": " + std::strerror(errno)};
    }
    const bool written = ::write(fd, text.data(), text.size()) == ssize_t(text.size());
    const int saved = errno;
    ::close(fd);
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

}  // namespace trident
