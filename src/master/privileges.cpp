#include "master/privileges.hpp"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>

namespace trident {

namespace {

struct UserEntry {
    uid_t uid = 0;
    gid_t gid = 0;  ///< primary group
    std::string name;
};

std::optional<UserEntry> find_user(const std::string& name) {
    std::vector<char> buffer(16384);
    passwd entry{};
    passwd* found = nullptr;
    if (getpwnam_r(name.c_str(), &entry, buffer.data(), buffer.size(), &found) != 0 ||
        found == nullptr) {
        return std::nullopt;
    }
    return UserEntry{found->pw_uid, found->pw_gid, found->pw_name};
}

std::optional<gid_t> find_group(const std::string& name) {
    std::vector<char> buffer(16384);
    group entry{};
    group* found = nullptr;
    if (getgrnam_r(name.c_str(), &entry, buffer.data(), buffer.size(), &found) != 0 ||
        found == nullptr) {
        return std::nullopt;
    }
    return found->gr_gid;
}

/// initgroups()'s list for `user` with primary group `gid`, read now, in the master.
std::vector<gid_t> supplementary_groups(const std::string& user, gid_t gid) {
    int count = 32;
    std::vector<gid_t> groups(static_cast<std::size_t>(count));
    while (getgrouplist(user.c_str(), gid, groups.data(), &count) < 0) {
        groups.resize(std::size_t(count) + 1);  // count now says how many there are
        count = int(groups.size());
    }
    groups.resize(std::size_t(count));
    return groups;
}

std::string current_user_text() {
    const uid_t uid = geteuid();
    std::vector<char> buffer(16384);
    passwd entry{};
    passwd* found = nullptr;
    if (getpwuid_r(uid, &entry, buffer.data(), buffer.size(), &found) == 0 && found != nullptr) {
        return std::string("'") + found->pw_name + "' (uid " + std::to_string(uid) + ")";
    }
    return "uid " + std::to_string(uid);
}

}  // namespace

Result<ChildIdentity> resolve_child_identity(const Config& config) {
    const bool root = geteuid() == 0;
    if (config.user.empty()) {
        if (root) {
            return Error{config.file.string() +
                         ": trident was started as root but the config names no `user`; set "
                         "`user:` (for example www-data) so the children drop root, or write "
                         "`user: root` to run them as root on purpose"};
        }
        if (!config.group.empty()) {
            const auto gid = find_group(config.group);
            if (!gid) {
                return Error{config.file.string() + ": unknown group '" + config.group + "'"};
            }
            if (*gid != getegid()) {
                return Error{config.file.string() + ": cannot run the children as group '" +
                             config.group + "': trident runs as " + current_user_text() +
                             ", and only root can switch groups"};
            }
        }
        return ChildIdentity{};
    }
    const auto user = find_user(config.user);
    if (!user) {
        return Error{config.file.string() + ": unknown user '" + config.user + "'"};
    }
    gid_t gid = user->gid;
    if (!config.group.empty()) {
        const auto found = find_group(config.group);
        if (!found) {
            return Error{config.file.string() + ": unknown group '" + config.group + "'"};
        }
        gid = *found;
    }
    if (!root) {
        if (user->uid != geteuid() || gid != getegid()) {
            return Error{config.file.string() + ": cannot run the children as user '" +
                         config.user + (config.group.empty() ? "" : "', group '" + config.group) +
                         "': trident runs as " + current_user_text() +
                         ", and only root can switch users"};
        }
        return ChildIdentity{};
    }
    ChildIdentity identity;
    identity.uid = user->uid;
    identity.gid = gid;
    identity.user = user->name;
    identity.groups = supplementary_groups(user->name, gid);
    // `user: root` (and root's group) keeps the master's identity: nothing to switch.
    identity.switch_user = identity.uid != 0 || identity.gid != getegid();
    return identity;
}

}  // namespace trident
